// The handler end to end: a real InvocationContext, the real Graph SDK against the simulator on loopback, and real
// Azurite queues for dead letters and re-queues. Assertions are on Graph's final state and on the records written.

import {beforeAll, describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {InternalError} from '../../src/engine/batch-dispatcher.js';
import {SystemicFailure} from '../../src/engine/link-engine.js';
import type {LinkGateway} from '../../src/graph/link-gateway.js';
import {parseMessage} from '../../src/message/message.js';
import {failureRequeueDelayMs} from '../../src/worker/requeue-decision.js';
import type {SimulatorOptions} from '../../src/simulator/graph-simulator.js';
import {waitFor} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {countMessages, drainJson, drainQueue} from '../support/queues.js';
import {createTestWorker} from '../support/worker.js';

const local = useLocalStack();

let batchSize = 20;

async function stack(options: SimulatorOptions = {}, worker: Parameters<typeof createTestWorker>[2] = {}) {
	const simulator = await local.startSimulator({packageCount: 12, ...options});
	const ids = simulator.packageIds;
	return {simulator, ids, worker: createTestWorker(simulator, local.azurite.connectionString, {batchSize, ...worker})};
}

const pair = (accessPackageId: string, incompatibleAccessPackageId: string) => ({accessPackageId, incompatibleAccessPackageId});
const unknownPackage = '00000000-0000-4000-a000-000000000001';

// Every behaviour holds with $batch (the default) and with each operation on its own (GRAPH_BATCH_SIZE=1).
describe.each([20, 1])('pairs handler, GRAPH_BATCH_SIZE=%i', size => {
	beforeAll(() => {
		batchSize = size;
	});

	it('adds every link and writes no dead letter', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b, c] = ids as [string, string, string];
		const summary = await worker.invoke({pairs: [pair(a, b), pair(a, c), pair(b, c)], correlationId: 'import-7'});
		expect(simulator.allLinks()).toEqual([`${a}/${b}`, `${a}/${c}`, `${b}/${c}`].sort());
		expect(summary.outcomes).toMatchObject({linked: 3, 'dead-letter': 0, requeued: 0});
		expect(await drainQueue(worker.deadLetterQueue)).toEqual([]);
		expect(worker.logs).toHaveLength(1);
		expect(worker.logs[0]).toMatch(/message message-1; attempt 1; 3 pairs: linked 3; \d+ ms; correlation import-7/);
	});

	it('links both directions for a symmetric envelope', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b] = ids as [string, string];
		await worker.invoke({pairs: [pair(a, b)], symmetric: true});
		expect(simulator.allLinks()).toEqual([`${a}/${b}`, `${b}/${a}`].sort());
	});

	it.each([400, 409] as const)('counts an existing link as already-linked when a duplicate add answers %i', async status => {
		const {simulator, ids, worker} = await stack({duplicateAddStatus: status});
		const [a, b, c] = ids as [string, string, string];
		simulator.link(a, b);
		const summary = await worker.invoke([pair(a, b), pair(a, c)]);
		expect(summary.outcomes).toMatchObject({linked: 1, 'already-linked': 1, 'dead-letter': 0});
		expect(simulator.linksOf(a)).toEqual([b, c].sort());
		expect(simulator.stats.byRoute['GET links']).toBe(1);
	});

	it('takes a 204 for a duplicate add as success without reading the list', async () => {
		const {simulator, ids, worker} = await stack({duplicateAddStatus: 204});
		const [a, b] = ids as [string, string];
		simulator.link(a, b);
		const summary = await worker.invoke(pair(a, b));
		expect(summary.outcomes).toMatchObject({linked: 1, 'dead-letter': 0});
		expect(simulator.stats.byRoute['GET links']).toBeUndefined();
	});

	it('dead-letters a 400 that is not a duplicate as bad-request, with Graph\'s code and request id', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b] = ids as [string, string];
		simulator.script({method: 'POST', reply: {status: 400, body: {error: {code: 'InvalidRequest', message: 'Policy forbids it'}}}});
		await worker.invoke({pairs: [pair(a, b)], correlationId: 'c-400'}, 'msg-400');
		const [record] = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		expect(record).toMatchObject({
			reason: 'bad-request',
			pair: pair(a, b),
			action: 'add',
			error: {status: 400, code: 'InvalidRequest', message: 'Policy forbids it'},
			attempts: 1,
			correlationId: 'c-400',
			sourceMessageId: 'msg-400',
			message: null,
		});
		expect(record!.error.requestId).toMatch(/^[\da-f-]{36}$/);
		expect(simulator.allLinks()).toEqual([]);
	});

	it('retries a 404 from a package that is still replicating, then links it', async () => {
		const {simulator, ids, worker} = await stack({faults: {notFoundFirstAdds: 2}});
		const [a, b] = ids as [string, string];
		const summary = await worker.invoke(pair(a, b));
		expect(summary.outcomes.linked).toBe(1);
		expect(simulator.hasLink(a, b)).toBe(true);
		expect(simulator.stats.byStatus[404]).toBe(2);
	});

	it('dead-letters a package that stays missing as not-found', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b] = ids as [string, string];
		await worker.invoke([pair(a, unknownPackage), pair(a, b)]);
		const records = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		expect(records).toHaveLength(1);
		expect(records[0]).toMatchObject({reason: 'not-found', pair: pair(a, unknownPackage), error: {status: 404, code: 'ResourceNotFound'}});
		expect(simulator.allLinks()).toEqual([`${a}/${b}`]);
		expect(simulator.stats.byStatus[404]).toBe(4); // The first try and three retries.
	});

	it('dead-letters a 403 as forbidden with Graph\'s code and message', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b] = ids as [string, string];
		simulator.script({
			method: 'POST',
			reply: {status: 403, body: {error: {code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.'}}},
		});
		await worker.invoke(pair(a, b));
		const [record] = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		expect(record).toMatchObject({
			reason: 'forbidden',
			error: {status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.'},
		});
		// The log says what to do: grant before first use, the token cache, and how to send the pairs back.
		expect(worker.logs.filter(line => line.startsWith('warning:'))).toEqual([
			expect.stringMatching(/1 pairs dead-lettered forbidden .*EntitlementManagement\.ReadWrite\.All.*sod-sync grant .*24 hours.*redrive --reason forbidden/),
		]);
	});

	it('fails the invocation on a bug of its own (a request that throws): nothing dead-lettered, the message comes back whole', async () => {
		const bug = new TypeError("Cannot read properties of undefined (reading 'status')");
		const {simulator, ids, worker} = await stack({}, {
			// The real gateway, with a defect planted where a request is made.
			gateway: real => Object.assign(Object.create(real) as LinkGateway, {
				execute: async () => {
					throw bug;
				},
				executeBatch: async () => {
					throw bug;
				},
			}),
		});
		const [a, b, c] = ids as [string, string, string];
		simulator.link(a, b);
		const invocation = worker.invoke({pairs: [pair(a, b), pair(a, c)], action: 'remove'}, 'msg-bug');
		await expect(invocation).rejects.toBeInstanceOf(InternalError);
		await expect(invocation).rejects.toThrow(/an internal error in sod-sync, not an answer from Graph: TypeError: Cannot read properties of undefined/);
		expect(await countMessages(worker.deadLetterQueue)).toBe(0);
		expect(worker.requeued).toEqual([]);
		expect(simulator.allLinks()).toEqual([`${a}/${b}`]);
		expect(worker.logs).toEqual([expect.stringMatching(/^error: sod-sync message msg-bug: an internal error in sod-sync, not an answer from Graph: TypeError: .*Nothing was dead-lettered; the message will be retried/)]);
	});

	it('rides out a 429 storm: every pair linked, never more requests in flight than the bound', async () => {
		const {simulator, ids, worker} = await stack(
			{packageCount: 12, throttle: {operationsPerSecond: 40, retryAfter: 'decimal', penaltyWindow: true}},
			{maxConcurrency: 4},
		);
		const pairs = ids.flatMap(from => ids.filter(to => to !== from).slice(0, 8).map(to => pair(from, to)));
		const summary = await worker.invoke(pairs);
		expect(summary.outcomes).toMatchObject({linked: pairs.length, 'dead-letter': 0, requeued: 0});
		expect(simulator.allLinks()).toHaveLength(pairs.length);
		expect(simulator.stats.byStatus[429]).toBeGreaterThan(0);
		expect(simulator.stats.peakConcurrency).toBeLessThanOrEqual(4);
		expect(worker.dependencies.engine.gate.closes).toBe(simulator.stats.byStatus[429]);
	});

	it.each(['seconds', 'http-date', 'absent'] as const)('honours 429s whose Retry-After is %s', async format => {
		const {simulator, ids, worker} = await stack({throttle: {operationsPerSecond: 5, retryAfter: format, retryAfterSeconds: 1}});
		const [a, ...others] = ids as [string, ...string[]];
		const pairs = others.slice(0, 8).map(to => pair(a, to));
		const summary = await worker.invoke(pairs);
		expect(summary.outcomes.linked).toBe(8);
		expect(simulator.linksOf(a)).toHaveLength(8);
	});

	it('survives connection resets after the write: the pair ends linked and is not dead-lettered', async () => {
		const {simulator, ids, worker} = await stack({duplicateAddStatus: 409});
		const [a, b, c] = ids as [string, string, string];
		simulator.script({method: 'POST', resetAfterWrite: true, times: 2});
		const summary = await worker.invoke([pair(a, b), pair(a, c)]);
		// Batched, both adds ride one request whose connection drops after both applied; unbatched, each drops its own.
		expect(simulator.stats.resets).toBe(batchSize === 1 ? 2 : 1);
		expect(summary.outcomes).toMatchObject({'already-linked': 2, 'dead-letter': 0});
		expect(simulator.linksOf(a)).toEqual([b, c].sort());
		expect(await countMessages(worker.deadLetterQueue)).toBe(0);
	});

	it('retries 5xx and links', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b] = ids as [string, string];
		for (const status of [500, 502, 503, 504]) {
			simulator.script({method: 'POST', reply: {status, body: {error: {code: 'UnknownError', message: 'boom'}}}});
		}

		const summary = await worker.invoke(pair(a, b));
		expect(summary.outcomes.linked).toBe(1);
		expect(simulator.hasLink(a, b)).toBe(true);
	});

	it('fails the invocation on a 401 without dead-lettering the pairs, and logs one clear error without the token', async () => {
		const {simulator, ids, worker} = await stack({token: 'the-right-token'}, {token: 'secret-wrong-token'});
		const [a, b] = ids as [string, string];
		await expect(worker.invoke([pair(a, b)])).rejects.toBeInstanceOf(SystemicFailure);
		expect(await countMessages(worker.deadLetterQueue)).toBe(0);
		expect(simulator.allLinks()).toEqual([]);
		const errors = worker.logs.filter(line => line.startsWith('error'));
		expect(errors).toHaveLength(1);
		expect(errors[0]).toMatch(/Graph refused the credential \(401\): Access token is empty or invalid\. The message will be retried/);
		expect(errors[0]).not.toContain('..');
		expect(worker.logs.join('\n')).not.toContain('secret-wrong-token');
	});

	it('re-queues what the time budget did not cover, with attempt + 1, invisible until the throttle lifts', async () => {
		const {simulator, ids, worker} = await stack({}, {invocationBudgetMs: 3000});
		const [a, b, c] = ids as [string, string, string];
		simulator.script({method: 'POST', times: 2, reply: {status: 429, headers: {'retry-after': '30'}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}}});
		const summary = await worker.invoke({pairs: [pair(a, b), pair(a, c)], correlationId: 'budget'});
		expect(summary.outcomes.requeued).toBe(2);
		expect(summary.requeueDelaySeconds).toBe(30);
		expect(await countMessages(worker.deadLetterQueue)).toBe(0);
		expect(await countMessages(worker.pairsQueue)).toBe(1);
		expect(await drainQueue(worker.pairsQueue)).toEqual([]); // Not visible yet.
		expect(simulator.allLinks()).toEqual([]);
	});

	it('hands the pairs its pace cannot send in time back to the queue at once, while the admitted ones run', async () => {
		// A 5.1 s budget: 4/s over the 4.1 s before the last second is 16.4, so 16 are admitted whatever the few
		// milliseconds between reading the clock and weighing the pace (with 5 s exactly, 16 or 15 by luck).
		// Without the ledger: its pre-image reads would spend some of the 4/s before admission (measured by the bench).
		const {simulator, ids, worker} = await stack({}, {invocationBudgetMs: 5100, ledger: false});
		const engine = worker.dependencies.engine;
		engine.control.adopt({rate: 4, ceiling: Number.POSITIVE_INFINITY, setAt: Date.now()}); // Graph took 4/s.
		const pairs = ids.flatMap(a => ids.filter(b => b !== a).map(b => pair(a, b))).slice(0, 40);
		let finished = false;
		const invocation = worker.invoke({pairs, correlationId: 'admission'}).finally(() => {
			finished = true;
		});
		await waitFor(() => worker.requeued.length > 0, 4000, 'the pairs not admitted to be re-queued');
		expect(finished).toBe(false);
		const handedBack = worker.requeued.flatMap(({text}) => {
			const parsed = parseMessage(text);
			return parsed.kind === 'pairs' ? parsed.pairs.map(item => ({...item, attempt: parsed.attempt})) : [];
		});
		// 4/s for the budget less the last second: 16 admitted, 24 handed back with their attempt unspent.
		expect(handedBack).toHaveLength(24);
		expect(handedBack.every(item => item.attempt === 0)).toBe(true);
		const summary = await invocation;
		expect(summary.outcomes.requeued).toBeGreaterThanOrEqual(24);
		expect(simulator.allLinks().length + summary.outcomes.requeued).toBe(40);
	});

	it('writes the re-queued pairs in the contract\'s own form, a failure spending an attempt and coming back later', async () => {
		const {simulator, ids, worker} = await stack({}, {invocationBudgetMs: 3000});
		const [a, b] = ids as [string, string];
		simulator.script({method: 'POST', reply: {status: 503, headers: {'retry-after': '0'}, body: {error: {code: 'x', message: 'y'}}}, times: 10});
		const summary = await worker.invoke({pairs: [pair(a, b)], correlationId: 'again', attempt: 1, firstEnqueuedAt: '2026-11-30T10:00:00.000Z'});
		expect(summary.outcomes.requeued).toBe(1);
		expect(worker.requeued).toHaveLength(1);
		const [{text, visibilityTimeoutSeconds}] = worker.requeued as [{text: string; visibilityTimeoutSeconds: number}];
		expect(parseMessage(text)).toMatchObject({
			kind: 'pairs',
			pairs: [pair(a, b)],
			attempt: 2,
			correlationId: 'again',
			action: 'add',
			firstEnqueuedAt: Date.parse('2026-11-30T10:00:00.000Z'),
		});
		expect(visibilityTimeoutSeconds).toBe(failureRequeueDelayMs(2) / 1000);
		expect(await drainQueue(worker.pairsQueue)).toEqual([]); // Not visible yet.
	});

	it('never charges throttling to a pair: a 429 on the last attempt re-queues it with its attempts unspent', async () => {
		const {simulator, ids, worker} = await stack({}, {invocationBudgetMs: 3000, maxAttempts: 3});
		const [a, b] = ids as [string, string];
		simulator.script({method: 'POST', reply: {status: 429, headers: {'retry-after': '30'}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}}});
		const summary = await worker.invoke({pairs: [pair(a, b)], attempt: 2});
		expect(summary.outcomes.requeued).toBe(1);
		expect(await drainQueue(worker.deadLetterQueue)).toEqual([]);
		expect(parseMessage(worker.requeued[0]!.text)).toMatchObject({kind: 'pairs', pairs: [pair(a, b)], attempt: 2});
		expect(worker.requeued[0]!.visibilityTimeoutSeconds).toBe(30);
	});

	it('dead-letters retries-exhausted with the last error once the failed attempts are spent', async () => {
		const {simulator, ids, worker} = await stack({}, {invocationBudgetMs: 3000, maxAttempts: 3});
		const [a, b] = ids as [string, string];
		simulator.script({method: 'POST', reply: {status: 503, body: {error: {code: 'ServiceUnavailable', message: 'try later'}}}, times: 10});
		await worker.invoke({pairs: [pair(a, b)], attempt: 2});
		const records = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		expect(records).toEqual([
			expect.objectContaining({
				reason: 'retries-exhausted',
				pair: pair(a, b),
				attempts: 3,
				error: expect.objectContaining({status: 503, code: 'ServiceUnavailable', message: expect.stringMatching(/failed in 3 attempts .*try later/)}),
			}),
		]);
		expect(worker.requeued).toEqual([]);
	});

	it('dead-letters expired, with its age and the last throttle seen, a pair still waiting past SOD_MAX_PAIR_AGE_HOURS', async () => {
		const {simulator, ids, worker} = await stack({}, {invocationBudgetMs: 3000, maxPairAgeMs: 60 * 60_000});
		const [a, b, c] = ids as [string, string, string];
		simulator.script({method: 'POST', reply: {status: 429, headers: {'retry-after': '30'}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}}});
		const firstEnqueuedAt = new Date(Date.now() - 2 * 60 * 60_000).toISOString();
		await worker.invoke({pairs: [pair(a, b)], firstEnqueuedAt});
		const records = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		expect(records).toEqual([
			expect.objectContaining({
				reason: 'expired',
				pair: pair(a, b),
				error: expect.objectContaining({status: 429, code: 'TooManyRequests', message: expect.stringMatching(/not applied 2\.0 h after it was first queued .*SOD_MAX_PAIR_AGE_HOURS is 1\.0 h; last failure: slow down/)}),
			}),
		]);
		expect(worker.requeued).toEqual([]);
		// A young pair in the same state is re-queued instead.
		simulator.script({method: 'POST', reply: {status: 429, headers: {'retry-after': '30'}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}}});
		await worker.invoke({pairs: [pair(a, c)]});
		expect(worker.requeued).toHaveLength(1);
		expect(await drainQueue(worker.deadLetterQueue)).toEqual([]);
	});

	it('dead-letters invalid pairs without calling Graph for them, and links the rest', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b] = ids as [string, string];
		await worker.invoke({pairs: [pair(a, a), pair('../x', b), pair(a, b)]});
		const records = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		// Written concurrently: any order.
		expect(records).toHaveLength(2);
		expect(records.map(record => [record.reason, record.pair, record.error.message])).toEqual(
			expect.arrayContaining([
				['invalid-pair', pair(a, a), expect.stringMatching(/itself/)],
				['invalid-pair', pair('../x', b), expect.stringMatching(/not a GUID/)],
			]),
		);
		expect(simulator.stats.operations).toBe(1);
		expect(simulator.allLinks()).toEqual([`${a}/${b}`]);
	});

	it('dead-letters an unusable message whole, with the reason and the raw text', async () => {
		const {simulator, worker} = await stack();
		await worker.invoke('{"pairs": [', 'broken-1');
		const records = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		expect(records).toEqual([
			expect.objectContaining({reason: 'invalid-message', message: '{"pairs": [', pair: null, action: null, sourceMessageId: 'broken-1'}),
		]);
		expect(records[0]!.error.message).toMatch(/not valid JSON/);
		expect(simulator.stats.requests).toBe(0);
	});

	it('removes links, and counts an absent link as already-absent', async () => {
		const {simulator, ids, worker} = await stack();
		const [a, b, c] = ids as [string, string, string];
		simulator.link(a, b);
		const summary = await worker.invoke({pairs: [pair(a, b), pair(a, c)], action: 'remove'});
		expect(summary.outcomes).toMatchObject({removed: 1, 'already-absent': 1, 'dead-letter': 0});
		expect(simulator.allLinks()).toEqual([]);
	});

	it('fails the invocation when a dead letter cannot be written, so the message comes back', async () => {
		const {ids, worker} = await stack();
		const [a] = ids as [string];
		worker.dependencies.deadLetterQueue = {
			send: async () => {
				throw new Error('storage unavailable');
			},
		};
		await expect(worker.invoke([pair(a, unknownPackage)])).rejects.toThrow('storage unavailable');
		expect(worker.logs.some(line => /1 of 1 dead-letter\/re-queue writes failed/.test(line))).toBe(true);
	});
});
