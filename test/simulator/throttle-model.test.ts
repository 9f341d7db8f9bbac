// The simulator's throttle on a fake clock: no sleeping.

import {describe, expect, it} from 'vitest';
import {ThrottleModel} from '../../src/simulator/throttle-model.js';

function clock(start = Date.parse('2026-11-30T10:00:00Z')) {
	let now = start;
	return {now: () => now, advance: (ms: number) => (now += ms)};
}

const spendMany = (model: ThrottleModel, count: number) => Array.from({length: count}, () => model.spend()).filter(refusal => refusal === undefined).length;

describe('ThrottleModel', () => {
	it('accepts a burst, then refills at the rate', () => {
		const time = clock();
		const model = new ThrottleModel({operationsPerSecond: 100, burstOperations: 50, penaltyWindow: false}, time.now);
		expect(spendMany(model, 80)).toBe(50);
		time.advance(200); // 20 tokens
		expect(spendMany(model, 30)).toBe(20);
		time.advance(10_000); // capped at the burst
		expect(spendMany(model, 80)).toBe(50);
	});

	it('has no limit without a rate', () => {
		const model = new ThrottleModel(undefined, clock().now);
		expect(spendMany(model, 10_000)).toBe(10_000);
	});

	it('extends the penalty window when called before Retry-After has passed (Dev Proxy), and not without it', () => {
		const time = clock();
		const model = new ThrottleModel({operationsPerSecond: 10, burstOperations: 1, retryAfterSeconds: 2}, time.now);
		expect(model.spend()).toBeUndefined();
		expect(model.spend()).toEqual({'retry-after': '2'});
		time.advance(1900); // The bucket has refilled, but the window is open: refused, and the window starts again.
		expect(model.spend()).toEqual({'retry-after': '2'});
		time.advance(1900);
		expect(model.spend()).toEqual({'retry-after': '2'});
		time.advance(2000);
		expect(model.spend()).toBeUndefined();
		const lenient = new ThrottleModel({operationsPerSecond: 10, burstOperations: 1, retryAfterSeconds: 2, penaltyWindow: false}, time.now);
		lenient.spend();
		expect(lenient.spend()).toBeDefined();
		time.advance(100);
		expect(lenient.spend()).toBeUndefined();
	});

	it.each([
		['seconds', {'retry-after': '1'}],
		['decimal', {'retry-after': '0.500'}],
		['http-date', {'retry-after': 'Mon, 30 Nov 2026 10:00:01 GMT'}],
		['absent', {}],
	] as const)('writes Retry-After as %s', (format, headers) => {
		const model = new ThrottleModel({operationsPerSecond: 10, burstOperations: 1, retryAfter: format}, clock().now);
		model.spend();
		expect(model.spend()).toEqual(headers);
	});

	it('sends the early warning on an accepted operation once 80% of the bucket is spent, only when asked', () => {
		const time = clock();
		const warned = new ThrottleModel({operationsPerSecond: 100, burstOperations: 100, penaltyWindow: false, limitWarnings: true}, time.now);
		const warnings: Array<string | undefined> = [];
		for (let index = 0; index < 100; index++) {
			expect(warned.spend()).toBeUndefined();
			warnings.push(warned.warning()?.['x-ms-throttle-limit-percentage']);
		}

		// The 80th operation leaves 20 tokens of 100: 0.80 spent.
		expect(warnings.slice(0, 79).every(warning => warning === undefined)).toBe(true);
		expect(warnings.slice(79, 81)).toEqual(['0.80', '0.81']);
		expect(warnings.at(-1)).toBe('1.00');
		time.advance(1000); // Refilled: no warning.
		warned.spend();
		expect(warned.warning()).toBeUndefined();
		const silent = new ThrottleModel({operationsPerSecond: 100, burstOperations: 100}, time.now);
		spendMany(silent, 99);
		expect(silent.warning()).toBeUndefined();
	});
});
