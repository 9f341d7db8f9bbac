// The simulator over raw HTTP (fetch), checking its wire format against what REFERENCE.md says Graph does.

import {afterEach, describe, expect, it} from 'vitest';
import {parseRetryAfter} from '../../src/graph/retry-after.js';
import {GraphSimulator, type SimulatorOptions} from '../../src/simulator/graph-simulator.js';

let simulator: GraphSimulator | undefined;

afterEach(async () => {
	await simulator?.close();
	simulator = undefined;
});

async function start(options: SimulatorOptions = {}) {
	simulator = await GraphSimulator.start({packageCount: 5, ...options});
	const base = `${simulator.baseUrl}/v1.0/identityGovernance/entitlementManagement/accessPackages`;
	const call = async (method: string, path: string, body?: unknown, token = simulator!.token) => {
		const response = await fetch(path.startsWith('http') ? path : `${base}${path}`, {
			method,
			headers: {authorization: `Bearer ${token}`, ...(body === undefined ? {} : {'content-type': 'application/json'})},
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await response.text();
		return {status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as any) : undefined};
	};

	const odataId = (id: string) => `${simulator!.baseUrl}/v1.0/identityGovernance/entitlementManagement/accessPackages/${id}`;
	return {simulator, base, call, odataId, ids: simulator.packageIds as [string, string, string, string, string]};
}

describe('GraphSimulator', () => {
	it('requires the bearer token and answers Graph\'s error body', async () => {
		const {call, ids} = await start();
		const response = await call('GET', `/${ids[0]}`, undefined, 'wrong');
		expect(response.status).toBe(401);
		expect(response.body.error).toMatchObject({code: 'InvalidAuthenticationToken', innerError: {'request-id': expect.any(String), date: expect.any(String)}});
		expect(response.headers.get('request-id')).toBe(response.body.error.innerError['request-id']);
		expect(simulator!.stats.unauthorized).toBe(1);
	});

	it('adds (204), lists with @odata.nextLink paging, and removes (204) links', async () => {
		const {call, odataId, ids} = await start({pageSize: 2});
		const [a, ...others] = ids;
		for (const other of others) {
			// eslint-disable-next-line no-await-in-loop
			expect((await call('POST', `/${a}/incompatibleAccessPackages/$ref`, {'@odata.id': odataId(other)})).status).toBe(204);
		}

		const seen: string[] = [];
		let next: string | undefined = `/${a}/incompatibleAccessPackages?$select=id`;
		let pages = 0;
		while (next) {
			// eslint-disable-next-line no-await-in-loop
			const page = await call('GET', next);
			expect(page.status).toBe(200);
			seen.push(...(page.body.value as Array<{id: string}>).map(item => item.id));
			expect(Object.keys(page.body.value[0] as object)).toEqual(['id']);
			next = page.body['@odata.nextLink'] as string | undefined;
			pages++;
		}

		expect(pages).toBe(2);
		expect(seen.sort()).toEqual([...others].sort());
		expect((await call('GET', `/${others[0]}/accessPackagesIncompatibleWith`)).body.value.map((item: {id: string}) => item.id)).toEqual([a]);
		expect((await call('DELETE', `/${a}/incompatibleAccessPackages/${others[0]}/$ref`)).status).toBe(204);
		expect((await call('DELETE', `/${a}/incompatibleAccessPackages/${others[0]}/$ref`)).status).toBe(404);
		expect(simulator!.linksOf(a)).toHaveLength(3);
	});

	it.each([204, 400, 409] as const)('answers a duplicate add with %i when so configured', async status => {
		const {call, odataId, ids} = await start({duplicateAddStatus: status});
		simulator!.link(ids[0], ids[1]);
		expect((await call('POST', `/${ids[0]}/incompatibleAccessPackages/$ref`, {'@odata.id': odataId(ids[1])})).status).toBe(status);
	});

	it('answers 404 ResourceNotFound for an unknown package and 400 for a malformed body or id', async () => {
		const {call, odataId, ids} = await start();
		const missing = '00000000-0000-4000-8000-000000000000';
		expect((await call('POST', `/${ids[0]}/incompatibleAccessPackages/$ref`, {'@odata.id': odataId(missing)})).body.error.code).toBe('ResourceNotFound');
		expect((await call('POST', `/${ids[0]}/incompatibleAccessPackages/$ref`, {'@odata.id': 'nonsense'})).status).toBe(400);
		expect((await call('GET', '/not-a-guid')).status).toBe(400);
	});

	it('records every request that matches no route', async () => {
		const {call, ids} = await start();
		await call('GET', `/${ids[0]}/somethingElse`);
		await call('PATCH', `/${ids[0]}`, {});
		expect(simulator!.stats.unmatched).toEqual([
			expect.stringContaining(`GET /v1.0/identityGovernance/entitlementManagement/accessPackages/${ids[0]}/somethingElse`),
			expect.stringContaining(`PATCH /v1.0/identityGovernance/entitlementManagement/accessPackages/${ids[0]}`),
		]);
	});

	it('answers 404 for the first N adds naming a package (replication lag)', async () => {
		const {call, odataId, ids} = await start({faults: {notFoundFirstAdds: 2}});
		const add = async () => (await call('POST', `/${ids[0]}/incompatibleAccessPackages/$ref`, {'@odata.id': odataId(ids[1])})).status;
		expect([await add(), await add(), await add()]).toEqual([404, 404, 204]);
	});

	it('applies a write and then drops the connection when told to', async () => {
		const {call, odataId, ids} = await start();
		simulator!.script({method: 'POST', resetAfterWrite: true});
		await expect(call('POST', `/${ids[0]}/incompatibleAccessPackages/$ref`, {'@odata.id': odataId(ids[1])})).rejects.toThrow();
		expect(simulator!.hasLink(ids[0], ids[1])).toBe(true);
		expect(simulator!.stats.resets).toBe(1);
	});

	it('answers 5xx at the configured rate', async () => {
		const {call, ids} = await start({faults: {serverErrorRate: 0.5}, seed: 3});
		const statuses = await Promise.all(Array.from({length: 200}, async () => (await call('GET', `/${ids[0]}`)).status));
		const errors = statuses.filter(status => status >= 500);
		expect(errors.length).toBeGreaterThan(70);
		expect(errors.length).toBeLessThan(130);
		expect(new Set(errors)).toEqual(new Set([500, 502, 503, 504]));
	});

	describe('throttling', () => {
		it('spends a burst, then answers 429 with Retry-After in whole seconds', async () => {
			const {call, ids} = await start({throttle: {operationsPerSecond: 1, burstOperations: 3, penaltyWindow: false}});
			const statuses: number[] = [];
			for (let index = 0; index < 5; index++) {
				// eslint-disable-next-line no-await-in-loop
				statuses.push((await call('GET', `/${ids[0]}`)).status);
			}

			expect(statuses).toEqual([200, 200, 200, 429, 429]);
			const throttled = await call('GET', `/${ids[0]}`);
			expect(throttled.headers.get('retry-after')).toBe('1');
			expect(throttled.body.error.code).toBe('TooManyRequests');
		});

		it.each([
			['decimal', /^\d+\.\d{3}$/],
			['http-date', /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/],
		] as const)('writes Retry-After as %s', async (format, pattern) => {
			const {call, ids} = await start({throttle: {operationsPerSecond: 1, burstOperations: 1, retryAfter: format}});
			await call('GET', `/${ids[0]}`);
			const throttled = await call('GET', `/${ids[0]}`);
			expect(throttled.status).toBe(429);
			expect(throttled.headers.get('retry-after')).toMatch(pattern);
			expect(parseRetryAfter(throttled.headers.get('retry-after'), Date.now())).toBeGreaterThan(0);
		});

		it('omits Retry-After when so configured', async () => {
			const {call, ids} = await start({throttle: {operationsPerSecond: 1, burstOperations: 1, retryAfter: 'absent'}});
			await call('GET', `/${ids[0]}`);
			const throttled = await call('GET', `/${ids[0]}`);
			expect(throttled.status).toBe(429);
			expect(throttled.headers.get('retry-after')).toBeNull();
		});

		// The penalty window's timing is tested on a fake clock in throttle-model.test.ts.

		it('starts throttling mid-run when reconfigured', async () => {
			const {call, ids} = await start();
			expect((await call('GET', `/${ids[0]}`)).status).toBe(200);
			simulator!.configure({throttle: {operationsPerSecond: 1, burstOperations: 1, penaltyWindow: false}});
			expect([(await call('GET', `/${ids[0]}`)).status, (await call('GET', `/${ids[0]}`)).status]).toEqual([200, 429]);
		});

		it('answers 429 past a concurrency cap, and reports the peak', async () => {
			const {call, ids} = await start({throttle: {maxConcurrentRequests: 2}, faults: {latencyMs: 100}});
			const statuses = await Promise.all(Array.from({length: 6}, async () => (await call('GET', `/${ids[0]}`)).status));
			expect(statuses.filter(status => status === 200).length).toBeGreaterThanOrEqual(2);
			expect(statuses).toContain(429);
			expect(simulator!.stats.peakConcurrency).toBe(6);
		});
	});

	describe('$batch', () => {
		const batch = async (requests: unknown[]) => {
			const {call} = await start();
			return call('POST', `${simulator!.baseUrl}/v1.0/$batch`, {requests});
		};

		it('answers each request by id, in any order, counting each as an operation', async () => {
			const {call, odataId, ids} = await start({seed: 5});
			const requests: Array<Record<string, unknown>> = ids.slice(1).map((id, index) => ({
				id: String(index + 1),
				method: 'POST',
				url: `/identityGovernance/entitlementManagement/accessPackages/${ids[0]}/incompatibleAccessPackages/$ref`,
				headers: {'Content-Type': 'application/json'},
				body: {'@odata.id': odataId(id)},
			}));
			requests.push({id: '9', method: 'GET', url: `identityGovernance/entitlementManagement/accessPackages/${ids[0]}/incompatibleAccessPackages`, headers: {}});
			const response = await call('POST', `${simulator!.baseUrl}/v1.0/$batch`, {requests});
			expect(response.status).toBe(200);
			const byId = new Map((response.body.responses as Array<{id: string; status: number}>).map(item => [item.id, item]));
			expect([...byId.keys()].sort()).toEqual(['1', '2', '3', '4', '9']);
			expect(['1', '2', '3', '4'].map(id => byId.get(id)!.status)).toEqual([204, 204, 204, 204]);
			expect(simulator!.linksOf(ids[0])).toHaveLength(4);
			expect(simulator!.stats.operations).toBe(5);
			// Answers by status count operations: the items, not the envelope that carried them.
			expect(simulator!.stats.byStatus).toEqual({200: 1, 204: 4});
			expect(simulator!.stats.batchByStatus).toEqual({200: 1});
		});

		it('counts a batch answered whole once per item it carried, and its own stats route not at all', async () => {
			const {call, ids} = await start();
			simulator!.script({method: 'POST', path: /^\/\$batch$/, reply: {status: 429, headers: {'retry-after': '1'}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}}});
			const requests = ids.slice(0, 3).map((id, index) => ({id: String(index), method: 'GET', url: `/identityGovernance/entitlementManagement/accessPackages/${id}/incompatibleAccessPackages`}));
			expect((await call('POST', `${simulator!.baseUrl}/v1.0/$batch`, {requests})).status).toBe(429);
			expect((await call('GET', `${simulator!.baseUrl}/_simulator/stats`)).status).toBe(200);
			expect(simulator!.stats.byStatus).toEqual({429: 3});
		});

		it('throttles batch items one by one, each with its own retry-after', async () => {
			const {call, odataId, ids} = await start({throttle: {operationsPerSecond: 1, burstOperations: 2, penaltyWindow: false}});
			const requests = ids.slice(1).map((id, index) => ({
				id: `r${index}`,
				method: 'POST',
				url: `/identityGovernance/entitlementManagement/accessPackages/${ids[0]}/incompatibleAccessPackages/$ref`,
				headers: {'content-type': 'application/json'},
				body: {'@odata.id': odataId(id)},
			}));
			const response = await call('POST', `${simulator!.baseUrl}/v1.0/$batch`, {requests});
			const statuses = (response.body.responses as Array<{status: number; headers: Record<string, string>}>).map(item => item.status).sort();
			expect(statuses).toEqual([204, 204, 429, 429]);
			for (const item of response.body.responses as Array<{status: number; headers: Record<string, string>}>) {
				if (item.status === 429) {
					expect(item.headers['retry-after']).toBe('1');
				}
			}
		});

		it('refuses more than 20 requests', async () => {
			const requests = Array.from({length: 21}, (_, index) => ({id: String(index), method: 'GET', url: '/identityGovernance/entitlementManagement/accessPackages'}));
			expect((await batch(requests)).status).toBe(400);
		});

		it('refuses a request with a body and no Content-Type', async () => {
			expect((await batch([{id: '1', method: 'POST', url: '/x', body: {}}])).body.error.message).toMatch(/no Content-Type/);
		});

		it('refuses duplicate ids and absolute urls', async () => {
			expect((await batch([{id: '1', method: 'GET', url: '/a'}, {id: '1', method: 'GET', url: '/b'}])).status).toBe(400);
			await simulator!.close();
			expect((await batch([{id: '1', method: 'GET', url: 'https://evil.example/v1.0/me'}])).status).toBe(400);
		});
	});
});

describe('GraphSimulator: incompatible groups and transitive membership', () => {
	const guid = (n: number) => `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;
	const groupOdataId = (id: string) => `${simulator!.baseUrl}/v1.0/groups/${id}`;

	it('adds, lists, answers a duplicate and an unknown group or package, and removes a package\'s incompatible group', async () => {
		const {call, ids} = await start({duplicateAddStatus: 409});
		const [a] = ids;
		simulator!.addGroup(guid(1), 'Payroll approvers');
		expect((await call('POST', `/${a}/incompatibleGroups/$ref`, {'@odata.id': groupOdataId(guid(1))})).status).toBe(204);
		expect((await call('GET', `/${a}/incompatibleGroups`)).body.value).toEqual([{id: guid(1), displayName: 'Payroll approvers'}]);
		expect((await call('POST', `/${a}/incompatibleGroups/$ref`, {'@odata.id': groupOdataId(guid(1))})).status).toBe(409);
		const unknownGroup = await call('POST', `/${a}/incompatibleGroups/$ref`, {'@odata.id': groupOdataId(guid(2))});
		expect([unknownGroup.status, unknownGroup.body.error.code]).toEqual([404, 'ResourceNotFound']);
		expect((await call('POST', `/${guid(99)}/incompatibleGroups/$ref`, {'@odata.id': groupOdataId(guid(1))})).status).toBe(404);
		// A package's URL where a group's belongs is refused, as is a group's id that is not a GUID.
		expect((await call('POST', `/${a}/incompatibleGroups/$ref`, {'@odata.id': `${simulator!.baseUrl}/v1.0/identityGovernance/entitlementManagement/accessPackages/${ids[1]}`})).status).toBe(400);
		expect((await call('DELETE', `/${a}/incompatibleGroups/${guid(1)}/$ref`)).status).toBe(204);
		expect((await call('DELETE', `/${a}/incompatibleGroups/${guid(1)}/$ref`)).status).toBe(404);
		expect(simulator!.allGroupLinks()).toEqual([]);
		expect(simulator!.stats.byRoute).toMatchObject({'POST group link': 5, 'GET group links': 1, 'DELETE group link': 2});
	});

	it('lists a group\'s users through nested groups three levels deep, each once, paged, a membership cycle ending the walk', async () => {
		await start({pageSize: 2});
		const [top, middle, bottom] = [guid(10), guid(11), guid(12)];
		for (const group of [top, middle, bottom]) {
			simulator!.addGroup(group);
		}

		const user = (n: number) => ({id: guid(100 + n), displayName: `User ${n}`, userPrincipalName: `user${n}@contoso.example`});
		for (const n of [1, 2, 3, 4]) {
			simulator!.addUser(user(n));
		}

		simulator!.addMember(top, user(1).id);
		simulator!.addMember(top, middle);
		simulator!.addMember(middle, user(2).id);
		simulator!.addMember(middle, bottom);
		simulator!.addMember(bottom, user(3).id);
		simulator!.addMember(bottom, user(1).id); // Also a direct member: listed once.
		simulator!.addMember(bottom, top); // A cycle.
		const users: unknown[] = [];
		let next: string | undefined = `${simulator!.baseUrl}/v1.0/groups/${top}/transitiveMembers/microsoft.graph.user`;
		let pages = 0;
		while (next) {
			// eslint-disable-next-line no-await-in-loop
			const page: {status: number; body: {value: unknown[]; '@odata.nextLink'?: string}} = await (async () => {
				const response = await fetch(next!, {headers: {authorization: `Bearer ${simulator!.token}`}});
				return {status: response.status, body: (await response.json()) as {value: unknown[]; '@odata.nextLink'?: string}};
			})();
			expect(page.status).toBe(200);
			users.push(...page.body.value);
			next = page.body['@odata.nextLink'];
			pages++;
		}

		expect(users).toEqual([user(1), user(2), user(3)]);
		expect(pages).toBe(2);
		const unknown = await fetch(`${simulator!.baseUrl}/v1.0/groups/${guid(77)}/transitiveMembers/microsoft.graph.user`, {headers: {authorization: `Bearer ${simulator!.token}`}});
		expect(unknown.status).toBe(404);
	});

	it('carries a package link and a group link in one $batch', async () => {
		const {ids} = await start();
		simulator!.addGroup(guid(1));
		const response = await fetch(`${simulator!.baseUrl}/v1.0/$batch`, {
			method: 'POST',
			headers: {authorization: `Bearer ${simulator!.token}`, 'content-type': 'application/json'},
			body: JSON.stringify({
				requests: [
					{id: '1', method: 'POST', url: `/identityGovernance/entitlementManagement/accessPackages/${ids[0]}/incompatibleAccessPackages/$ref`, headers: {'content-type': 'application/json'}, body: {'@odata.id': `${simulator!.baseUrl}/v1.0/identityGovernance/entitlementManagement/accessPackages/${ids[1]}`}},
					{id: '2', method: 'POST', url: `/identityGovernance/entitlementManagement/accessPackages/${ids[0]}/incompatibleGroups/$ref`, headers: {'content-type': 'application/json'}, body: {'@odata.id': groupOdataId(guid(1))}},
				],
			}),
		});
		const {responses} = (await response.json()) as {responses: Array<{id: string; status: number}>};
		expect(responses.map(item => [item.id, item.status]).sort()).toEqual([
			['1', 204],
			['2', 204],
		]);
		expect(simulator!.allLinks()).toEqual([`${ids[0]}/${ids[1]}`]);
		expect(simulator!.allGroupLinks()).toEqual([`${ids[0]}/${guid(1)}`]);
	});
});
