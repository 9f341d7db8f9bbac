import {createServer, type IncomingHttpHeaders} from 'node:http';
import type {AddressInfo} from 'node:net';
import type {Context, Middleware} from '@microsoft/microsoft-graph-client';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import {createGraphClient, OriginBoundAuthentication, staticTokenSource} from '../../src/graph/graph-client.js';
import {classifyAnswer, readBatchItem, readSdkError} from '../../src/graph/graph-failure.js';
import {GraphLinkGateway, readLinksPage} from '../../src/graph/link-gateway.js';
import {GraphSimulator} from '../../src/simulator/graph-simulator.js';
import {chooseCredential, createLinkEngine} from '../../src/worker/worker-runtime.js';
import {readSettings} from '../../src/config/settings.js';
import type {EngineEvent} from '../../src/engine/engine-events.js';

const token = 'token-under-test';

describe('OriginBoundAuthentication', () => {
	async function headersSentTo(url: string, initial: Record<string, string> = {}): Promise<Record<string, string>> {
		const authentication = new OriginBoundAuthentication('http://127.0.0.1:5999', staticTokenSource(token));
		let seen: Record<string, string> = {};
		const capture: Middleware = {
			async execute(context: Context) {
				seen = context.options?.headers as Record<string, string>;
			},
		};
		authentication.setNext(capture);
		await authentication.execute({request: url, options: {headers: initial}});
		return seen;
	}

	it('sends the token to the configured Graph origin, over http too', async () => {
		expect((await headersSentTo('http://127.0.0.1:5999/v1.0/x')).authorization).toBe(`Bearer ${token}`);
	});

	it.each([
		'http://127.0.0.1:6000/v1.0/x', // Another port is another origin.
		'https://127.0.0.1:5999/v1.0/x',
		'http://evil.example/v1.0/x',
		'not a url',
	])('sends no token to %s, and strips one that was set', async url => {
		const headers = await headersSentTo(url, {Authorization: 'Bearer leaked'});
		expect(headers.authorization).toBeUndefined();
		expect(headers.Authorization).toBeUndefined();
	});
});

describe('GraphLinkGateway over the real SDK', () => {
	let simulator: GraphSimulator;
	let foreignHits: IncomingHttpHeaders[];
	let foreign: ReturnType<typeof createServer>;
	let foreignOrigin: string;

	beforeAll(async () => {
		simulator = await GraphSimulator.start({packageCount: 3, pageSize: 1});
		foreignHits = [];
		foreign = createServer((request, response) => {
			foreignHits.push(request.headers);
			response.writeHead(200, {'content-type': 'application/json'}).end('{"value":[]}');
		});
		await new Promise<void>(resolve => foreign.listen(0, '127.0.0.1', resolve));
		foreignOrigin = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;
	});

	afterAll(async () => {
		await simulator.close();
		await new Promise(resolve => foreign.close(resolve));
	});

	function gateway(tokenValue = simulator.token) {
		const graphBaseUrl = new URL(simulator.baseUrl);
		const client = createGraphClient({graphBaseUrl, apiVersion: 'v1.0', tokenSource: staticTokenSource(tokenValue)});
		return new GraphLinkGateway(client, {graphBaseUrl, apiVersion: 'v1.0'});
	}

	it('adds a link with the @odata.id built from the configured origin, and pages through the list', async () => {
		const [a, b, c] = simulator.packageIds as [string, string, string];
		const signal = new AbortController().signal;
		expect(await gateway().execute({kind: 'add', pair: {accessPackageId: a, incompatibleAccessPackageId: b}}, signal)).toEqual({kind: 'ok', value: undefined});
		expect(await gateway().execute({kind: 'add', pair: {accessPackageId: a, incompatibleAccessPackageId: c}}, signal)).toEqual({kind: 'ok', value: undefined});
		const first = await gateway().execute({kind: 'list', accessPackageId: a, nextLink: undefined}, signal);
		const firstPage = readLinksPage(first.kind === 'ok' ? first.value : undefined);
		expect(firstPage.ids).toHaveLength(1);
		const second = await gateway().execute({kind: 'list', accessPackageId: a, nextLink: firstPage.nextLink}, signal);
		const secondPage = readLinksPage(second.kind === 'ok' ? second.value : undefined);
		expect([...firstPage.ids, ...secondPage.ids].sort()).toEqual([b, c].sort());
		expect(secondPage.nextLink).toBeUndefined();
	});

	it('sends up to 20 operations in one $batch and matches the answers by id', async () => {
		const [a, b, c] = simulator.packageIds as [string, string, string];
		simulator.link(b, a);
		const before = simulator.stats.requests;
		const results = await gateway().executeBatch(
			[
				{kind: 'add', pair: {accessPackageId: b, incompatibleAccessPackageId: c}},
				{kind: 'remove', pair: {accessPackageId: b, incompatibleAccessPackageId: a}},
				{kind: 'add', pair: {accessPackageId: b, incompatibleAccessPackageId: '00000000-0000-4000-8000-000000000000'}},
				{kind: 'list', accessPackageId: c, nextLink: undefined},
				{kind: 'list', accessPackageId: c, nextLink: `${foreignOrigin}/v1.0/x`},
			],
			new AbortController().signal,
		);
		expect(simulator.stats.requests - before).toBe(1);
		expect(results).toEqual([
			{kind: 'ok', value: undefined},
			{kind: 'ok', value: undefined},
			{kind: 'failed', failure: expect.objectContaining({kind: 'not-found', status: 404, code: 'ResourceNotFound', requestId: expect.any(String)})},
			{kind: 'ok', value: {value: []}},
			{kind: 'failed', failure: expect.objectContaining({code: 'UntrustedNextLink'})},
		]);
		expect(simulator.linksOf(b)).toEqual([c]);
	});

	it('gives every operation the failure of the $batch request itself', async () => {
		const [a, b, c] = simulator.packageIds as [string, string, string];
		simulator.script({path: /\$batch/, reply: {status: 503, headers: {'retry-after': '2'}, body: {error: {code: 'ServiceUnavailable', message: 'busy'}}}});
		const results = await gateway().executeBatch(
			[
				{kind: 'add', pair: {accessPackageId: c, incompatibleAccessPackageId: a}},
				{kind: 'add', pair: {accessPackageId: c, incompatibleAccessPackageId: b}},
			],
			new AbortController().signal,
		);
		expect(results).toEqual([
			{kind: 'failed', failure: expect.objectContaining({kind: 'server', status: 503, retryAfterMs: 2000})},
			{kind: 'failed', failure: expect.objectContaining({kind: 'server', status: 503, retryAfterMs: 2000})},
		]);
	});

	it('reads the items of a $batch answered 424 (items throttled) one by one, as it reads a 200', async () => {
		const [a, b, c] = simulator.packageIds as [string, string, string];
		simulator.configure({throttle: {batchStatusWhenThrottled: 424}});
		simulator.script({method: 'POST', path: /incompatibleAccessPackages/, reply: {status: 429, headers: {'retry-after': '3'}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}}});
		const results = await gateway().executeBatch(
			[
				{kind: 'add', pair: {accessPackageId: a, incompatibleAccessPackageId: c}},
				{kind: 'list', accessPackageId: b, nextLink: undefined},
			],
			new AbortController().signal,
		);
		simulator.configure({throttle: {}});
		expect(simulator.stats.batchByStatus[424]).toBe(1);
		expect(results).toEqual([
			{kind: 'failed', failure: expect.objectContaining({kind: 'throttled', status: 429, retryAfterMs: 3000})},
			{kind: 'ok', value: expect.objectContaining({value: expect.any(Array)})},
		]);
	});

	it('refuses an @odata.nextLink on another origin, sending nothing there', async () => {
		const [a] = simulator.packageIds as [string];
		const result = await gateway().execute({kind: 'list', accessPackageId: a, nextLink: `${foreignOrigin}/v1.0/steal?$skiptoken=1`}, new AbortController().signal);
		expect(result).toMatchObject({kind: 'failed', failure: {kind: 'bad-request', code: 'UntrustedNextLink'}});
		expect(foreignHits).toEqual([]);
	});

	it('refuses a same-origin @odata.nextLink that holds another URL, sending nothing anywhere', async () => {
		const [a] = simulator.packageIds as [string];
		const before = simulator.stats.requests;
		const foreignHost = foreignOrigin.replace('http://', '');
		for (const nextLink of [
			`${simulator.baseUrl}/v1.0/${foreignHost}/page2?x=https://${foreignHost}/v1.0/y`,
			`${simulator.baseUrl}/v1.0//${foreignHost}/page2`,
			`${simulator.baseUrl}/v1.0/page2?x=https%3A%2F%2F${foreignHost}%2Fv1.0`,
		]) {
			// eslint-disable-next-line no-await-in-loop
			const result = await gateway().execute({kind: 'list', accessPackageId: a, nextLink}, new AbortController().signal);
			expect(result, nextLink).toMatchObject({kind: 'failed', failure: {kind: 'bad-request', code: 'UntrustedNextLink'}});
		}

		expect(simulator.stats.requests).toBe(before);
		expect(foreignHits).toEqual([]);
	});

	it('sends nothing to another origin whatever URL the SDK is handed', async () => {
		const graphBaseUrl = new URL(simulator.baseUrl);
		const client = createGraphClient({graphBaseUrl, apiVersion: 'v1.0', tokenSource: staticTokenSource(token)});
		// The SDK takes any https:// URL as absolute (and an http:// one as a path on Graph's origin).
		for (const url of [`https://${foreignOrigin.replace('http://', '')}/v1.0/x`, 'https://graph.microsoft.com/v1.0/x', `/x?y=https://${foreignOrigin.replace('http://', '')}/z`]) {
			// eslint-disable-next-line no-await-in-loop
			const error = await client.api(url).get().catch((thrown: unknown) => thrown);
			expect(classifyAnswer(readSdkError(error), Date.now()), url).toMatchObject({kind: 'bad-request', code: 'UntrustedOriginError'});
		}

		expect(foreignHits).toEqual([]);
	});

	it('answers a request it cannot build (an id from Graph that is not a GUID) with a failure value, not a throw', async () => {
		const result = await gateway().execute({kind: 'list', accessPackageId: 'not-a-guid', nextLink: undefined}, new AbortController().signal);
		expect(result).toMatchObject({kind: 'failed', failure: {kind: 'bad-request', code: 'InvalidRequest', message: expect.stringContaining('not-a-guid')}});
		const batch = await gateway().executeBatch([{kind: 'add', pair: {accessPackageId: 'x', incompatibleAccessPackageId: 'y'}}], new AbortController().signal);
		expect(batch).toEqual([{kind: 'failed', failure: expect.objectContaining({code: 'InvalidRequest'})}]);
	});

	it('classifies a wrong token as unauthorized, with Graph\'s code', async () => {
		const [a, b] = simulator.packageIds as [string, string];
		const result = await gateway('wrong').execute({kind: 'add', pair: {accessPackageId: a, incompatibleAccessPackageId: b}}, new AbortController().signal);
		expect(result).toMatchObject({kind: 'failed', failure: {kind: 'unauthorized', status: 401, code: 'InvalidAuthenticationToken'}});
	});

	it('classifies a refused connection as Graph unreachable (nothing was sent), naming the cause', async () => {
		// A port that was just free: nothing listens there.
		const probe = createServer();
		await new Promise<void>(resolve => probe.listen(0, '127.0.0.1', resolve));
		const {port} = probe.address() as AddressInfo;
		await new Promise(resolve => probe.close(resolve));
		const graphBaseUrl = new URL(`http://127.0.0.1:${port}`);
		const client = createGraphClient({graphBaseUrl, apiVersion: 'v1.0', tokenSource: staticTokenSource(token)});
		const result = await new GraphLinkGateway(client, {graphBaseUrl, apiVersion: 'v1.0'}).execute(
			{kind: 'list', accessPackageId: simulator.packageIds[0]!, nextLink: undefined},
			new AbortController().signal,
		);
		expect(result).toMatchObject({kind: 'failed', failure: {kind: 'unreachable', code: 'UnreachableError', message: expect.stringContaining('ECONNREFUSED')}});
	});

	it('classifies a credential that cannot give a token as unauthorized', async () => {
		const graphBaseUrl = new URL(simulator.baseUrl);
		const client = createGraphClient({
			graphBaseUrl,
			apiVersion: 'v1.0',
			tokenSource: {
				getToken: async () => {
					throw new Error('ManagedIdentityCredential: no managed identity endpoint');
				},
			},
		});
		const result = await new GraphLinkGateway(client, {graphBaseUrl, apiVersion: 'v1.0'}).execute(
			{kind: 'list', accessPackageId: simulator.packageIds[0]!, nextLink: undefined},
			new AbortController().signal,
		);
		expect(result).toMatchObject({kind: 'failed', failure: {kind: 'unauthorized', message: expect.stringContaining('no managed identity endpoint')}});
	});
});

describe('incompatible groups and transitive members through the gateway, over the real SDK', () => {
	const guid = (n: number) => `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;

	it('adds, lists and removes a group link, one by one and in a $batch beside a package link; reads nested members', async () => {
		const simulator = await GraphSimulator.start({packageCount: 3, pageSize: 1, duplicateAddStatus: 409});
		try {
			const graphBaseUrl = new URL(simulator.baseUrl);
			const gateway = new GraphLinkGateway(createGraphClient({graphBaseUrl, apiVersion: 'v1.0', tokenSource: staticTokenSource(simulator.token)}), {graphBaseUrl, apiVersion: 'v1.0'});
			const signal = new AbortController().signal;
			const [a, b] = simulator.packageIds as [string, string];
			for (const n of [1, 2, 3]) {
				simulator.addGroup(guid(n));
			}

			expect(await gateway.execute({kind: 'add', pair: {accessPackageId: a, incompatibleGroupId: guid(1)}}, signal)).toEqual({kind: 'ok', value: undefined});
			const again = await gateway.execute({kind: 'add', pair: {accessPackageId: a, incompatibleGroupId: guid(1)}}, signal);
			expect(again.kind === 'failed' && again.failure.status).toBe(409);
			const unknown = await gateway.execute({kind: 'add', pair: {accessPackageId: a, incompatibleGroupId: guid(9)}}, signal);
			expect(unknown.kind === 'failed' && [unknown.failure.kind, unknown.failure.status]).toEqual(['not-found', 404]);
			const batch = await gateway.executeBatch(
				[
					{kind: 'add', pair: {accessPackageId: a, incompatibleGroupId: guid(2)}},
					{kind: 'add', pair: {accessPackageId: a, incompatibleAccessPackageId: b}},
				],
				signal,
			);
			expect(batch.map(result => result.kind)).toEqual(['ok', 'ok']);
			expect(simulator.allGroupLinks()).toEqual([`${a}/${guid(1)}`, `${a}/${guid(2)}`]);
			const first = await gateway.execute({kind: 'list-groups', accessPackageId: a, nextLink: undefined}, signal);
			const page = first.kind === 'ok' ? readLinksPage(first.value) : undefined;
			expect(page?.ids).toEqual([guid(1)]);
			expect(page?.nextLink).toBeDefined();
			expect(await gateway.execute({kind: 'remove', pair: {accessPackageId: a, incompatibleGroupId: guid(1)}}, signal)).toEqual({kind: 'ok', value: undefined});
			expect(simulator.allGroupLinks()).toEqual([`${a}/${guid(2)}`]);

			// Members three levels down, read page by page through the engine.
			const user = (n: number) => ({id: guid(100 + n), displayName: `User ${n}`, userPrincipalName: `u${n}@contoso.example`});
			simulator.addUser(user(1));
			simulator.addUser(user(2));
			simulator.addMember(guid(1), guid(2));
			simulator.addMember(guid(2), guid(3));
			simulator.addMember(guid(3), user(1).id);
			simulator.addMember(guid(1), user(2).id);
			const settings = readSettings({AzureWebJobsStorage: 'DefaultEndpointsProtocol=http;AccountName=x;AccountKey=eA==;QueueEndpoint=http://127.0.0.1:9/x', GRAPH_BASE_URL: simulator.baseUrl});
			const engine = createLinkEngine(settings, staticTokenSource(simulator.token));
			const members = await engine.readAll({kind: 'transitive-users', groupId: guid(1), nextLink: undefined}, {deadline: Date.now() + 10_000});
			expect(members).toEqual({kind: 'ok', value: [{id: user(1).id}, {id: user(2).id}]});
		} finally {
			await simulator.close();
		}
	});
});

describe("Graph's early warning (x-ms-throttle-limit-percentage)", () => {
	it.each([20, 1])('reaches the engine from the simulator with batch size %i, which eases before any 429', async batchSize => {
		const simulator = await GraphSimulator.start({
			packageCount: 40,
			throttle: {operationsPerSecond: 20, burstOperations: 100, penaltyWindow: false, limitWarnings: true},
			faults: {latencyMs: 5, jitterMs: 0},
		});
		try {
			const settings = readSettings({
				AzureWebJobsStorage: 'DefaultEndpointsProtocol=http;AccountName=x;AccountKey=eA==;QueueEndpoint=http://127.0.0.1:9/x',
				GRAPH_BASE_URL: simulator.baseUrl,
				GRAPH_BATCH_SIZE: String(batchSize),
			});
			const engine = createLinkEngine(settings, staticTokenSource(simulator.token));
			const warnings: EngineEvent[] = [];
			engine.events.on(event => warnings.push(event), ['limit-warning']);
			const ids = simulator.packageIds;
			const pairs = ids.slice(0, 10).flatMap(a => ids.slice(10, 30).map(b => ({accessPackageId: a, incompatibleAccessPackageId: b})));
			const outcomes = await engine.run(pairs.slice(0, 95), 'add', {deadline: Date.now() + 30_000});
			expect(outcomes.every(outcome => outcome.status === 'linked')).toBe(true);
			// 95 of a 100-operation bucket refilling at 20/s, sent in well under a second: 80% is spent before any 429.
			expect(simulator.stats.byStatus['429'] ?? 0).toBe(0);
			// Unpaced, the warning drops the concurrency to one (the first 429 would set the pace).
			expect(warnings.length).toBeGreaterThan(0);
			expect(warnings[0]).toMatchObject({type: 'limit-warning', eased: 'concurrency'});
			expect((warnings[0] as {used: number}).used).toBeGreaterThanOrEqual(0.8);
		} finally {
			await simulator.close();
		}
	});
});

describe('classifyAnswer', () => {
	const classifyThrown = (error: unknown) => classifyAnswer(readSdkError(error), 0);

	it('turns anything thrown into a typed failure', () => {
		expect(classifyThrown('a string')).toMatchObject({kind: 'network', message: 'a string'});
		expect(classifyThrown(undefined)).toMatchObject({kind: 'network'});
		expect(classifyThrown({statusCode: 503, code: 'x', message: 'm', headers: new Headers({'retry-after': '4'})})).toMatchObject({
			kind: 'server',
			status: 503,
			retryAfterMs: 4000,
		});
		expect(classifyThrown({statusCode: -1, name: 'RequestTimeoutError', message: 'no answer in 30 s'})).toMatchObject({kind: 'timeout', code: 'RequestTimeoutError'});
		expect(classifyThrown({name: 'toString', message: 'an error named after a prototype member'})).toMatchObject({kind: 'network'});
	});

	it('classifies a $batch item as it classifies the same answer to a plain request', () => {
		const item = {
			id: '3',
			status: 429,
			headers: {'Retry-After': '2', 'Request-Id': 'from-header'},
			body: {error: {code: 'TooManyRequests', message: 'slow down', innerError: {'request-id': 'from-body'}}},
		};
		const thrown = {statusCode: 429, code: 'TooManyRequests', message: 'slow down', requestId: 'from-body', headers: new Headers({'retry-after': '2'})};
		expect(classifyAnswer(readBatchItem(item), 0)).toEqual(classifyThrown(thrown));
		expect(classifyAnswer(readBatchItem(item), 0)).toEqual({kind: 'throttled', status: 429, code: 'TooManyRequests', message: 'slow down', requestId: 'from-body', retryAfterMs: 2000});
		expect(classifyAnswer(readBatchItem({id: '4', status: 404, headers: {'request-id': 'r'}}), 0)).toMatchObject({kind: 'not-found', requestId: 'r', message: 'HTTP 404'});
	});
});

describe('chooseCredential', () => {
	it.each([
		[{}, {graphAccessToken: 'x'}, 'static-token'],
		[{IDENTITY_ENDPOINT: 'http://169.254.1.1'}, {}, 'managed-identity'],
		[{AZURE_CLIENT_ID: 'id'}, {}, 'managed-identity'],
		[{AZURE_CLIENT_ID: 'id', AZURE_CLIENT_SECRET: 's'}, {}, 'default'],
		[{}, {}, 'default'],
	])('%j %j -> %s', (environment, settings, choice) => {
		expect(chooseCredential(environment, {graphAccessToken: undefined, ...settings})).toBe(choice);
	});
});
