import {describe, expect, it} from 'vitest';
import type {EngineEvent} from '../../src/engine/engine-events.js';
import {describeEngineEvent} from '../../src/worker/engine-log.js';

describe('describeEngineEvent', () => {
	it.each<[EngineEvent, string | undefined]>([
		[{type: 'throttled', at: 0, cause: 'throttled', retryAfterMs: 1500, reopenAt: 1500}, "sod-sync: Graph throttled (429, Retry-After 1.5 s); every request waits 1.5 s"],
		[{type: 'throttled', at: 0, cause: 'throttled', retryAfterMs: undefined, reopenAt: 2000}, 'sod-sync: Graph throttled (429, no Retry-After); every request waits 2.0 s'],
		[{type: 'throttled', at: 0, cause: 'unreachable', retryAfterMs: undefined, reopenAt: 1000}, 'sod-sync: Graph cannot be reached; every request waits 1.0 s, backing off (no pair is charged for it)'],
		[{type: 'gate-held', at: 0, reopenAt: 3000}, 'sod-sync: another instance was throttled; this one waits 3.0 s too'],
		[
			{type: 'pace-changed', at: 0, pace: {rate: 42.4, ceiling: 50, setAt: 0}, source: 'this-instance'},
			"sod-sync: pacing at 42 operations/s from now on (found here; this instance's share; Graph's ceiling as found 50 operations/s)",
		],
		[
			{type: 'pace-changed', at: 0, pace: {rate: 2.5, ceiling: Number.POSITIVE_INFINITY, setAt: 0}, source: 'shared-record'},
			"sod-sync: pacing at 2.5 operations/s from now on (from the instances' shared record; this instance's share; no ceiling fitted yet)",
		],
		[{type: 'instances-changed', at: 0, instances: 3, previous: 1}, "sod-sync: 3 instances share Graph's budget (was 1)"],
		[{type: 'limit-warning', at: 0, used: 0.853, eased: 'concurrency'}, "sod-sync: Graph says 85% of the app's limit is spent; one request at a time until it throttles and a pace is found"],
		[{type: 'limit-warning', at: 0, used: 0.9, eased: 'pace'}, undefined],
		[
			{type: 'pace-changed', at: 0, pace: {rate: 85, ceiling: 100, setAt: 0}, source: 'limit-warning'},
			"sod-sync: pacing at 85 operations/s from now on (eased before a 429: Graph says 80% of the app's limit is spent; this instance's share; Graph's ceiling as found 100 operations/s)",
		],
		[{type: 'request', at: 0, operations: 20, accepted: 20, throttled: 0, failed: 0, statuses: {'204': 20}}, undefined],
	])('%j', (event, line) => {
		expect(describeEngineEvent(event)).toBe(line);
	});
});
