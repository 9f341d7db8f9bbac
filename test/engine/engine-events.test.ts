// The engine's events: raised at the core for the edges (logging, metrics), and never able to break the engine.

import {afterEach, describe, expect, it, vi} from 'vitest';
import {EngineEvents, type EngineEvent} from '../../src/engine/engine-events.js';
import {LinkEngine} from '../../src/engine/link-engine.js';
import {InProcessThrottleStore} from '../../src/engine/shared-throttle.js';
import type {CallResult, LinkGateway, LinkOperation} from '../../src/graph/link-gateway.js';

const pairsOf = (count: number) =>
	Array.from({length: count}, (_, index) => ({
		accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
		incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(index + 1000).padStart(12, '0')}`,
	}));

/** Accepts the first `accepted` operations, answers the next request 429 (Retry-After 1 s), then accepts all. */
function throttlingGateway(accepted: number): LinkGateway {
	let seen = 0;
	let throttled = false;
	const answer = (): CallResult<unknown> => {
		seen++;
		if (seen > accepted && !throttled) {
			return {kind: 'failed', failure: {kind: 'throttled', status: 429, message: 'slow down', retryAfterMs: 1000}};
		}

		return {kind: 'ok', value: undefined};
	};

	return {
		async execute() {
			await new Promise(resolve => setTimeout(resolve, 10));
			return answer();
		},
		async executeBatch(operations: readonly LinkOperation[]) {
			await new Promise(resolve => setTimeout(resolve, 10));
			const results = operations.map(() => answer());
			throttled ||= results.some(result => result.kind === 'failed');
			return results;
		},
	};
}

describe('EngineEvents', () => {
	it('tells every listener, survives a listener that throws, and stops telling one that unsubscribed', () => {
		const events = new EngineEvents();
		const heard: string[] = [];
		events.on(() => {
			throw new Error('a bug at the edge');
		});
		const stop = events.on(event => heard.push(`a ${event.type}`));
		events.on(event => heard.push(`b ${event.type}`));
		const event: EngineEvent = {type: 'instances-changed', at: 0, instances: 2, previous: 1};
		expect(events.listens('instances-changed')).toBe(true);
		events.emit(event);
		stop();
		events.emit(event);
		expect(heard).toEqual(['a instances-changed', 'b instances-changed', 'b instances-changed']);
	});

	it('tells a listener only the types it subscribed to, and says nobody listens to the others', () => {
		const events = new EngineEvents();
		const heard: string[] = [];
		events.on(event => heard.push(event.type), ['throttled']);
		expect(events.listens('request')).toBe(false);
		expect(events.listens('throttled')).toBe(true);
		events.emit({type: 'request', at: 0, operations: 1, accepted: 1, throttled: 0, failed: 0, statuses: {'204': 1}});
		events.emit({type: 'throttled', at: 0, cause: 'throttled', retryAfterMs: 1000, reopenAt: 1000});
		expect(heard).toEqual(['throttled']);
	});
});

describe('the events a LinkEngine raises', () => {
	afterEach(() => {
		vi.useRealTimers();
	});

	it('a throttle event with its Retry-After, the pace it set, and every request with what became of its operations', async () => {
		vi.useFakeTimers({now: 1_000_000});
		const engine = new LinkEngine({gateway: throttlingGateway(60), maxConcurrency: 4});
		const heard: EngineEvent[] = [];
		engine.events.on(event => heard.push(event));
		const running = engine.run(pairsOf(200), 'add', {deadline: Date.now() + 120_000});
		await vi.advanceTimersByTimeAsync(60_000);
		const outcomes = await running;
		expect(outcomes.every(outcome => outcome.status === 'linked')).toBe(true);
		const throttled = heard.filter(event => event.type === 'throttled');
		expect(throttled).toEqual([{type: 'throttled', at: expect.any(Number), cause: 'throttled', retryAfterMs: 1000, reopenAt: throttled[0]!.at + 1000}]);
		const paces = heard.filter(event => event.type === 'pace-changed');
		expect(paces).toEqual([expect.objectContaining({type: 'pace-changed', source: 'this-instance', at: throttled[0]!.at})]);
		expect(paces[0]!.type === 'pace-changed' && paces[0]!.pace).toEqual(engine.control.pace);
		const requests = heard.filter((event): event is Extract<EngineEvent, {type: 'request'}> => event.type === 'request');
		expect(requests).toHaveLength(engine.stats.requests);
		expect(requests.reduce((sum, event) => sum + event.operations, 0)).toBe(engine.stats.operations);
		expect(requests.reduce((sum, event) => sum + event.throttled, 0)).toBe(engine.stats.throttled);
		expect(requests.reduce((sum, event) => sum + event.accepted, 0)).toBe(200);
		// By HTTP status, operation by operation: a write that succeeded answered 204, a throttled one 429.
		const statuses: Record<string, number> = {};
		for (const event of requests) {
			for (const [status, count] of Object.entries(event.statuses)) {
				statuses[status] = (statuses[status] ?? 0) + count;
			}
		}

		expect(statuses).toEqual({'204': 200, '429': engine.stats.throttled});
	});

	it('the other instances, the gate another instance shut, and the pace shared with this one', async () => {
		vi.useFakeTimers({now: 1_000_000});
		const store = new InProcessThrottleStore();
		const now = Date.now();
		await store.exchange('peer', {reopenAt: now + 2000, sentAt: now - 100, closedAt: now, pace: {rate: 40, ceiling: 50, setAt: now + 2000}}, now);
		const engine = new LinkEngine({gateway: throttlingGateway(Number.POSITIVE_INFINITY), maxConcurrency: 4, throttleStore: store});
		const heard: EngineEvent[] = [];
		engine.events.on(event => heard.push(event));
		const running = engine.run(pairsOf(20), 'add', {deadline: now + 60_000});
		await vi.advanceTimersByTimeAsync(10_000);
		await running;
		expect(heard.find(event => event.type === 'instances-changed')).toEqual({type: 'instances-changed', at: now, instances: 2, previous: 1});
		expect(heard.find(event => event.type === 'gate-held')).toEqual({type: 'gate-held', at: now, reopenAt: now + 2000});
		expect(heard.find(event => event.type === 'pace-changed')).toEqual({type: 'pace-changed', at: now, pace: {rate: 20, ceiling: 25, setAt: now + 2000}, source: 'shared-record'});
	});
});
