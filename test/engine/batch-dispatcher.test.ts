// The $batch dispatcher on fake timers: what leaves together, what waits for the gate, and what is never Graph's fault.

import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest';
import {BatchDispatcher, InternalError, type DispatchStats} from '../../src/engine/batch-dispatcher.js';
import {systemClock} from '../../src/engine/clock.js';
import {EngineEvents} from '../../src/engine/engine-events.js';
import {ThrottleGate} from '../../src/engine/throttle-gate.js';
import {ThroughputControl} from '../../src/engine/throughput-control.js';
import type {CallResult, LinkGateway, LinkOperation} from '../../src/graph/link-gateway.js';

const operation = (index: number): LinkOperation => ({
	kind: 'add',
	pair: {accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`, incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(index + 100).padStart(12, '0')}`},
});

function dispatcher(gateway: LinkGateway, batchSize = 20) {
	const stats: DispatchStats = {requests: 0, operations: 0, throttled: 0, unreachable: 0};
	const gate = new ThrottleGate();
	const dispatch = new BatchDispatcher({
		gateway,
		control: new ThroughputControl({maxConcurrency: 2}),
		gate,
		clock: systemClock,
		batchSize,
		requestTimeoutMs: 30_000,
		sync: undefined,
		stats,
		events: new EngineEvents(),
	});
	return {dispatch, stats, gate};
}

const context = (deadline = Date.now() + 60_000) => ({deadline, signal: new AbortController().signal});
const ok: CallResult<unknown> = {kind: 'ok', value: undefined};

/**
 * A dispatcher with one request in flight at first (half of 2) and two operations a request, whose requests record
 * the operations they carry (a write by its package id's last three digits, a read by its kind) and answer once
 * `release` is called.
 */
function recording() {
	const sent: string[][] = [];
	let release: () => void = () => undefined;
	const held = new Promise<void>(resolve => {
		release = resolve;
	});
	const name = (each: LinkOperation) => (each.kind === 'add' ? each.pair.accessPackageId.slice(-3) : each.kind);
	const {dispatch} = dispatcher(
		{
			async execute(single) {
				sent.push([name(single)]);
				await held;
				return ok;
			},
			async executeBatch(operations) {
				sent.push(operations.map(name));
				await held;
				return operations.map(() => ok);
			},
		},
		2,
	);
	return {dispatch, sent, release};
}

describe('BatchDispatcher', () => {
	beforeEach(() => {
		vi.useFakeTimers({now: 1_000_000});
	});

	afterEach(() => {
		vi.useRealTimers();
	});

	it('sends operations submitted together in $batch requests of at most batchSize, each answer to its operation', async () => {
		const sizes: number[] = [];
		const {dispatch, stats} = dispatcher({
			execute: async () => ok,
			async executeBatch(operations) {
				sizes.push(operations.length);
				return operations.map((_, index) => ({kind: 'ok', value: index}));
			},
		}, 5);
		const run = context();
		const sent = Promise.all(Array.from({length: 12}, async (_, index) => dispatch.send(operation(index), run)));
		await vi.advanceTimersByTimeAsync(100);
		const results = await sent;
		expect(sizes.sort()).toEqual([2, 5, 5]);
		expect(results.every(result => result.kind === 'ok')).toBe(true);
		expect(stats).toMatchObject({requests: 3, operations: 12});
	});

	it('sends a continuation (a retry, a verifying read) ahead of operations waiting for their first request', async () => {
		const {dispatch, sent, release} = recording();
		const run = context();
		// The first request fills the only slot (the control starts at half of 2); eight first writes wait behind it.
		const first = Array.from({length: 10}, async (_, index) => dispatch.send(operation(index), run));
		await vi.advanceTimersByTimeAsync(1);
		const retry = dispatch.send(operation(50), run, true);
		const verify = dispatch.send({kind: 'list', accessPackageId: '00000000-0000-4000-8000-000000000060', nextLink: undefined}, run, true);
		await vi.advanceTimersByTimeAsync(1);
		release();
		await Promise.all([...first, retry, verify]);
		// The continuations leave in the next request, in the order they came, before writes 2 to 9 that were waiting longer.
		expect(sent).toEqual([['000', '001'], ['050', 'list'], ['002', '003'], ['004', '005'], ['006', '007'], ['008', '009']]);
	});

	it('serves the run due soonest first, so that messages of one batch settle one after another rather than together', async () => {
		const {dispatch, sent, release} = recording();
		const later = context(Date.now() + 60_000);
		const sooner = context(Date.now() + 30_000);
		// The run due later comes first and takes the only slot; the one due sooner arrives while its writes wait.
		const first = Array.from({length: 4}, async (_, index) => dispatch.send(operation(index), later));
		await vi.advanceTimersByTimeAsync(1);
		const second = Array.from({length: 4}, async (_, index) => dispatch.send(operation(100 + index), sooner));
		// A retry of the later run is started work, yet the run due sooner goes first.
		const retry = dispatch.send(operation(50), later, true);
		await vi.advanceTimersByTimeAsync(1);
		release();
		await Promise.all([...first, ...second, retry]);
		expect(sent).toEqual([['000', '001'], ['100', '101'], ['102', '103'], ['050', '002'], ['003']]);
	});

	it('serves two runs due at the same moment one after another, in the order they first sent (a host batch starts in one millisecond)', async () => {
		const {dispatch, sent, release} = recording();
		release();
		const deadline = Date.now() + 60_000;
		const [first, second] = [context(deadline), context(deadline)];
		// Submitted interleaved, as two messages' pairs arrive when their pre-images are read.
		const all = Array.from({length: 4}, (_, index) => [dispatch.send(operation(index), first), dispatch.send(operation(100 + index), second)]).flat();
		await vi.advanceTimersByTimeAsync(10);
		await Promise.all(all);
		expect(sent).toEqual([['000', '001'], ['002', '003'], ['100', '101'], ['102', '103']]);
	});

	it('rejects with InternalError, never a failure blaming Graph, when a request throws', async () => {
		const {dispatch} = dispatcher({
			execute: async () => {
				throw new TypeError('a bug');
			},
			executeBatch: async () => {
				throw new TypeError('a bug');
			},
		});
		const run = context();
		const sent = Promise.allSettled([dispatch.send(operation(1), run), dispatch.send(operation(2), run)]);
		await vi.advanceTimersByTimeAsync(10);
		const results = await sent;
		for (const result of results) {
			expect(result.status).toBe('rejected');
			expect((result as PromiseRejectedResult).reason).toBeInstanceOf(InternalError);
			expect(String((result as PromiseRejectedResult).reason.message)).toMatch(/^an internal error in sod-sync, not an answer from Graph: TypeError: a bug$/);
		}
	});

	it('holds a throttled operation until the gate reopens, then sends it again; the others are answered at once', async () => {
		const starts: number[] = [];
		let calls = 0;
		const {dispatch, stats, gate} = dispatcher({
			async execute() {
				starts.push(Date.now()); // A lone operation goes without $batch.
				return ok;
			},
			async executeBatch(operations) {
				starts.push(Date.now());
				calls++;
				return operations.map((_, index) => (calls === 1 && index === 0 ? {kind: 'failed', failure: {kind: 'throttled', status: 429, message: 'wait', retryAfterMs: 2000}} : ok));
			},
		});
		const run = context();
		const sent = Promise.all([dispatch.send(operation(1), run), dispatch.send(operation(2), run)]);
		await vi.advanceTimersByTimeAsync(1000);
		expect(gate.isOpen()).toBe(false);
		await vi.advanceTimersByTimeAsync(2000);
		expect((await sent).map(result => result.kind)).toEqual(['ok', 'ok']);
		expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(2000);
		expect(stats.throttled).toBe(1);
	});

	it('defers an operation whose deadline leaves no time for a request, without sending it', async () => {
		const {dispatch, stats} = dispatcher({execute: async () => ok, executeBatch: async operations => operations.map(() => ok)});
		const result = await dispatch.send(operation(1), {deadline: Date.now() + 500, signal: new AbortController().signal});
		expect(result.kind).toBe('deferred');
		expect(stats.requests).toBe(0);
	});
});
