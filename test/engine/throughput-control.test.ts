import {describe, expect, it} from 'vitest';
import type {Clock} from '../../src/engine/clock.js';
import {ThroughputControl} from '../../src/engine/throughput-control.js';

function fakeClock(start = 1_000_000): Clock & {advance(ms: number): void} {
	let now = start;
	return {
		now: () => now,
		sleep: async ms => {
			now += ms;
		},
		advance(ms) {
			now += ms;
		},
	};
}

describe('ThroughputControl', () => {
	it('starts at half the maximum concurrency, grows by about one per window of successes, never past the maximum', () => {
		const control = new ThroughputControl({maxConcurrency: 8});
		expect(control.concurrency).toBe(4);
		for (let index = 0; index < 4; index++) {
			control.recordAccepted(20);
		}

		expect(control.concurrency).toBe(5);
		for (let index = 0; index < 100; index++) {
			control.recordAccepted(20);
		}

		expect(control.concurrency).toBe(8);
	});

	it('halves concurrency on each throttle event, down to one', () => {
		const control = new ThroughputControl({maxConcurrency: 8, initialConcurrency: 8, clock: fakeClock()});
		control.recordThrottle(1000);
		expect(control.concurrency).toBe(4);
		control.recordThrottle(1000);
		control.recordThrottle(1000);
		control.recordThrottle(1000);
		expect(control.concurrency).toBe(1);
	});

	it('does not pace until the first throttle event', () => {
		const control = new ThroughputControl({maxConcurrency: 8});
		expect(control.rate).toBe(Number.POSITIVE_INFINITY);
		expect(control.reserve(1_000_000)).toBe(0);
	});

	it('paces at what a token-bucket throttle sustains: accepted operations over the time until it reopens', () => {
		// A bucket of 400 operations refilling at 400/s: a client pushing hard gets ~440 through in 0.1 s, then 429 with
		// Retry-After: 1. 440 / 1.1 s is the sustained 400/s.
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		clock.advance(100);
		control.recordAccepted(440);
		control.recordThrottle(1000);
		expect(control.rate).toBeCloseTo(400, 5);
	});

	it('makes the sender wait for its turn at the paced rate', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock, probeGrowthPerSecond: 0});
		clock.advance(1000);
		control.recordAccepted(200);
		control.recordThrottle(1000); // 200 / 2 s = 100 operations per second, from when the gate reopens.
		clock.advance(1000);
		const waits = Array.from({length: 5}, () => control.reserve(20));
		// 20 operations at 100/s is 200 ms each; the budget starts empty.
		expect(waits).toEqual([200, 400, 600, 800, 1000]);
	});

	it('probes upward while nothing is throttled: 10% per second, compounded', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		control.recordAccepted(100);
		control.recordThrottle(1000);
		clock.advance(1000);
		const settled = control.rate;
		clock.advance(2000);
		expect(control.rate / settled).toBeCloseTo(1.21, 5);
	});

	it('keeps its rate when a throttle event comes with too little evidence (another client may have spent the budget)', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock, probeGrowthPerSecond: 0});
		control.recordAccepted(5);
		control.recordThrottle(1000);
		expect(control.rate).toBe(Number.POSITIVE_INFINITY);
		clock.advance(1500); // The gate reopened 500 ms ago.
		control.recordAccepted(300);
		control.recordThrottle(1000); // 300 accepted over 0.5 s since it reopened plus the 1 s wait: 200/s.
		expect(control.rate).toBeCloseTo(200, 5);
		clock.advance(1000);
		control.recordThrottle(1000); // Nothing accepted since.
		expect(control.rate).toBeCloseTo(200, 5);
	});
});
