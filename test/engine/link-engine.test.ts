// The engine against a fake gateway: what leaves, when, and how many at once.

import {describe, expect, it, vi} from 'vitest';
import {LinkEngine} from '../../src/engine/link-engine.js';
import type {CallResult, LinkGateway, LinkOperation} from '../../src/graph/link-gateway.js';

function fakeGateway(answer: (call: number) => CallResult<unknown>, latencyMs = 20) {
	const starts: number[] = [];
	let inFlight = 0;
	let peak = 0;
	const one = async (): Promise<CallResult<unknown>> => {
		const call = starts.push(Date.now());
		inFlight++;
		peak = Math.max(peak, inFlight);
		await new Promise(resolve => setTimeout(resolve, latencyMs));
		inFlight--;
		return answer(call);
	};

	const gateway: LinkGateway = {
		execute: async () => one(),
		executeBatch: async (operations: readonly LinkOperation[]) => {
			const result = await one();
			return operations.map(() => result);
		},
	};
	return {gateway, starts, peak: () => peak};
}

const pairs = Array.from({length: 12}, (_, index) => ({
	accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
	incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(index + 100).padStart(12, '0')}`,
}));

describe('LinkEngine', () => {
	it('sends nothing while the gate is shut, then everything, never more at once than allowed (fake clock)', async () => {
		vi.useFakeTimers();
		try {
			const throttled: CallResult<unknown> = {kind: 'failed', failure: {kind: 'throttled', status: 429, message: 'slow down', retryAfterMs: 300}};
			const fake = fakeGateway(call => (call === 1 ? throttled : {kind: 'ok', value: undefined}));
			const engine = new LinkEngine({gateway: fake.gateway, maxConcurrency: 4, batchSize: 1});
			const running = engine.run(pairs, 'add', {deadline: Date.now() + 10_000});
			await vi.runAllTimersAsync();
			const outcomes = await running;
			expect(outcomes.map(outcome => outcome.status)).toEqual(pairs.map(() => 'linked'));
			const [first, ...rest] = fake.starts;
			// Requests that left with the first one were in flight already; after its 429 (20 ms later) none left until
			// its Retry-After (300 ms) had passed.
			const answeredAt = first! + 20;
			expect(rest.filter(start => start > first! && start < answeredAt + 300)).toEqual([]);
			expect(rest.filter(start => start >= answeredAt + 300).length).toBeGreaterThan(0);
			expect(fake.peak()).toBeLessThanOrEqual(4);
			expect(fake.starts).toHaveLength(pairs.length + 1);
		} finally {
			vi.useRealTimers();
		}
	});

	it('packs operations from concurrent runs into shared $batch requests', async () => {
		const fake = fakeGateway(() => ({kind: 'ok', value: undefined}));
		const engine = new LinkEngine({gateway: fake.gateway, maxConcurrency: 1});
		const [first, second] = await Promise.all([
			engine.run(pairs.slice(0, 6), 'add', {deadline: Date.now() + 10_000}),
			engine.run(pairs.slice(6), 'add', {deadline: Date.now() + 10_000}),
		]);
		expect([...first, ...second].every(outcome => outcome.status === 'linked')).toBe(true);
		expect(fake.starts).toHaveLength(1); // Twelve operations, one request.
	});

	it('defers what it cannot start before the deadline, without sending it', async () => {
		const fake = fakeGateway(() => ({kind: 'ok', value: undefined}));
		const engine = new LinkEngine({gateway: fake.gateway});
		const outcomes = await engine.run(pairs, 'add', {deadline: Date.now() + 500});
		expect(outcomes.map(outcome => outcome.status)).toEqual(pairs.map(() => 'deferred'));
		expect(fake.starts).toEqual([]);
	});

	it('admits no more than its pace sends before the deadline, and hands the rest back for no longer than that deadline', async () => {
		// On fake timers: the pace climbs with time, so the figures below hold exactly however fast the machine runs them.
		vi.useFakeTimers({now: 1_000_000});
		try {
			const fake = fakeGateway(() => ({kind: 'ok', value: undefined}));
			const engine = new LinkEngine({gateway: fake.gateway, maxConcurrency: 1, batchSize: 1});
			expect(engine.admit(1000, Date.now() + 5000)).toBe(1000); // Unpaced: no pace to weigh against.
			engine.control.adopt({rate: 10, ceiling: Number.POSITIVE_INFINITY, setAt: Date.now()});
			const stop = new AbortController();
			const holding = engine.run(pairs, 'add', {deadline: Date.now() + 60_000, signal: stop.signal}); // 12 held: 1.2 s at 10/s.
			try {
				// 10/s for the 20 s before the deadline, less the last second no request starts in, less the 12 held.
				expect(engine.admit(1000, Date.now() + 20_000)).toBe(10 * 19 - 12);
				expect(engine.admit(1000, Date.now() + 1500)).toBe(0);
				// What it holds is sent in 1.2 s at its pace...
				expect(engine.admissionDelayMs(Date.now() + 60_000)).toBe(1200);
				// ...but a run that ends sooner hands back what it could not send by then: the wait is never longer.
				expect(engine.admissionDelayMs(Date.now() + 400)).toBe(400);
			} finally {
				stop.abort();
				await vi.runAllTimersAsync();
				await holding.catch(() => undefined);
			}
		} finally {
			vi.useRealTimers();
		}
	});

});
