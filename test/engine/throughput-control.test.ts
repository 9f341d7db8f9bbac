import {describe, expect, it} from 'vitest';
import type {Clock} from '../../src/engine/clock.js';
import {fittedRate, paceAt, paceDecrease, paceGrowth, probeGrowth, refillSpend, ThroughputControl} from '../../src/engine/throughput-control.js';

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

/**
 * A process's first burst against a 400-operation bucket refilling at 400/s: 440 accepted in 0.1 s, then a 429 with
 * Retry-After: 1. The first estimate is 400/s (440 over 1.1 s), the bucket 400.
 */
function afterFirstBurst(): {clock: ReturnType<typeof fakeClock>; control: ThroughputControl} {
	const clock = fakeClock();
	const control = new ThroughputControl({maxConcurrency: 8, clock});
	control.reserve(20);
	clock.advance(100);
	control.recordAccepted(440);
	control.recordThrottle(1000);
	return {clock, control};
}

describe('fittedRate', () => {
	it('finds the refill rate of a bucket emptied by the end of the history', () => {
		// Under the rate for 4 s (the bucket stays full, whatever it refills is lost), then 600/s for 2 s.
		expect(fittedRate([...Array.from({length: 40}, () => 30), ...Array.from({length: 20}, () => 60)], 100, 6000, 2000, 400)).toBeCloseTo(400, 5);
	});

	it('counts what the bucket refilled during the wait before the history, when that was less than the bucket', () => {
		// 500/s for 2 s after a 0.1 s wait: the bucket held only 0.1 s worth, so r (0.1 + 2) = 1,000.
		expect(fittedRate(Array.from({length: 20}, () => 50), 100, 2000, 100, 400)).toBeCloseTo(1000 / 2.1, 5);
	});

	it('ignores stretches too short to say anything (a bucket spent in a few bins)', () => {
		// 400 in the last 100 ms: a 400-operation bucket spent at once says nothing of the rate.
		expect(fittedRate([0, 0, 0, 0, 0, 0, 0, 0, 0, 400], 100, 1000, 1000, 400)).toBeCloseTo(200, 5);
	});
});

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
		// A client pushing hard gets ~440 through a 400-operation bucket in 0.1 s; 440 / 1.1 s is the sustained 400/s.
		const {control} = afterFirstBurst();
		expect(control.rate).toBeCloseTo(400, 5);
	});

	it('makes the sender wait for its turn at the paced rate', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		clock.advance(1000);
		control.recordAccepted(200);
		control.recordThrottle(1000); // 200 / 2 s = 100 operations per second, from when the gate reopens.
		clock.advance(1000);
		const waits = Array.from({length: 5}, () => control.reserve(20));
		// 20 operations at 100/s is 200 ms each; the budget starts empty.
		expect(waits).toEqual([200, 400, 600, 800, 1000]);
	});

	it('probes upward from a first estimate at once, in a straight line, and spends what the wait refilled on top', () => {
		const {clock, control} = afterFirstBurst(); // 400/s; the rest of the 440, 400, was the bucket.
		expect(control.pace).toMatchObject({ceiling: Number.POSITIVE_INFINITY, setAt: clock.now() + 1000});
		expect(control.pace?.rate).toBeCloseTo(400, 9);
		expect(control.pace?.refill).toBeCloseTo(400, 9);
		clock.advance(1500); // Half a second after the gate reopened.
		const spending = refillSpend * 400;
		expect(control.rate).toBeCloseTo(400 * (1 + probeGrowth * 0.5) + spending, 5);
		clock.advance(1000);
		expect(control.rate).toBeCloseTo(400 * (1 + probeGrowth * 1.5) + spending, 5);
		clock.advance(3000); // 4 s spend the 400 at 100/s: the straight line alone from then on.
		expect(control.rate).toBeCloseTo(400 * (1 + probeGrowth * 4.5), 5);
	});

	it('measures the first interval from the first request, not from when the process started', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		clock.advance(5000); // Start-up, reading the queue.
		expect(control.reserve(20)).toBe(0);
		clock.advance(100);
		control.recordAccepted(440);
		control.recordThrottle(1000);
		expect(control.rate).toBeCloseTo(400, 5); // 440 over 0.1 s + 1 s, not over 5.1 s + 1 s.
	});

	it('after a paced 429, takes as ceiling the rate of the bucket that explains it, not the rate it came at', () => {
		// A 400-operation bucket refilling at 400/s. The first burst: 440 in 0.1 s, then 429 with Retry-After: 1, so the
		// first estimate is 400/s and the bucket 400. The pace probes upward; this instance sends 200/s for 4 s (under
		// the rate: the bucket stays full, the surplus is lost), then 600/s for 2 s, which empties it.
		const {clock, control} = afterFirstBurst();
		clock.advance(1000);
		for (const [bins, perBin] of [[40, 20], [20, 60]] as const) {
			for (let bin = 0; bin < bins; bin++) {
				clock.advance(50);
				control.recordAccepted(perBin);
				clock.advance(50);
			}
		}

		const before = control.rate;
		expect(before).toBeGreaterThan(1000); // Probing, far past the ceiling.
		control.recordThrottle(1000);
		// What was accepted per second over the interval (2,000 / 6 s = 333) would be too low, the rate it came at far
		// too high.
		expect(control.pace?.ceiling).toBeCloseTo(400, 5);
		// The fit is the bucket's rate, not the rate the 429 came at: no drop below it. The 1 s wait puts back 400.
		expect(control.pace?.rate).toBeCloseTo(400, 5);
		expect(control.pace?.refill).toBeCloseTo(400, 5);
	});

	it('after a fitted 429, spends what the wait refilled on top of the ceiling, holds the ceiling, then probes past it', () => {
		const pace = {rate: 400, ceiling: 400, setAt: 0, refill: 200};
		const spendMs = (200 / (refillSpend * 400)) * 1000; // 2 s at +25%.
		expect(paceAt(pace, 1)).toBeCloseTo(400 * (1 + refillSpend), 5);
		expect(paceAt(pace, spendMs - 1)).toBeCloseTo(400 * (1 + refillSpend), 5);
		expect(paceAt(pace, spendMs)).toBeCloseTo(400, 5);
		expect(paceAt(pace, spendMs + 2000)).toBeCloseTo(400, 5); // The plateau.
		expect(paceAt(pace, spendMs + 3000)).toBeCloseTo(400 * (1 + paceGrowth), 5);
		// No refill (a wait too short to put any back): the plateau starts at once.
		expect(paceAt({rate: 400, ceiling: 400, setAt: 0}, 1000)).toBeCloseTo(400, 5);
		// The refill is at most the bucket: a wait longer than it takes to fill the bucket puts back the bucket.
		const {clock, control} = afterFirstBurst();
		clock.advance(1000);
		for (let bin = 0; bin < 30; bin++) {
			control.recordAccepted(80); // 800/s for 3 s, then a 429 with Retry-After: 5.
			clock.advance(100);
		}

		control.recordThrottle(5000);
		expect(control.pace?.ceiling).toBeCloseTo((2400 - 400) / 3, 5); // What 3 s at 800/s say, less the bucket.
		expect(control.pace?.refill).toBeCloseTo(400, 5); // Not 667/s x 5 s.
	});

	it('with no bucket to fit, remembers the rate a paced 429 came at: drops below it, regains it fast, lingers there, then probes past it', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		control.adopt({rate: 400, ceiling: Number.POSITIVE_INFINITY, setAt: clock.now()});
		control.recordThrottle(2000);
		expect(control.pace).toEqual({rate: 400 * paceDecrease, ceiling: 400, setAt: clock.now() + 2000});
		clock.advance(2000);
		expect(control.rate).toBeCloseTo(400 * paceDecrease, 5);
		const regainSeconds = Math.cbrt((1 - paceDecrease) / paceGrowth);
		clock.advance(regainSeconds * 1000);
		expect(control.rate).toBeCloseTo(400, 5);
		clock.advance(1000);
		expect(control.rate).toBeCloseTo(400 * (1 + paceGrowth), 5);
		expect(paceAt({rate: 340, ceiling: 400, setAt: 0}, 0)).toBe(340);
	});

	it('climbs only while the process holds work: time idle is no evidence that Graph would take more', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		const pace = {rate: 85, ceiling: 100, setAt: clock.now()};
		control.setBusy(true);
		control.adopt(pace);
		clock.advance(1000);
		control.setBusy(false);
		const atRest = control.rate;
		expect(atRest).toBeCloseTo(paceAt(pace, pace.setAt + 1000), 5);
		clock.advance(60_000); // Its messages invisible on the queue for a minute.
		expect(control.rate).toBeCloseTo(atRest, 5);
		control.setBusy(true);
		clock.advance(1000);
		expect(control.rate).toBeCloseTo(paceAt(pace, pace.setAt + 2000), 5);
		expect(control.rate).toBeLessThan(paceAt(pace, clock.now()));
	});

	it('fits a 429 to the evidence of its present share only: what it sent while another instance shared the budget says nothing of the budget now', () => {
		// Two instances share 400/s at 200 each, the bucket (400) known from the first burst; after 10 s one leaves and the
		// other paces at the whole 400 from the shared record (same pace, its share doubled). Its first 429 at that share
		// comes 0.6 s later: the budget is 400/s, not the 211/s that 10 s at 200/s and 0.6 s at 400/s average to.
		const {clock, control} = afterFirstBurst();
		clock.advance(1000);
		const setAt = clock.now();
		control.setInstances(2);
		control.adopt({rate: 200, ceiling: 200, setAt});
		for (let bin = 0; bin < 100; bin++) {
			clock.advance(100);
			control.recordAccepted(20);
		}

		control.setInstances(1);
		control.adopt({rate: 400, ceiling: 400, setAt});
		for (let bin = 0; bin < 6; bin++) {
			clock.advance(100);
			control.recordAccepted(40);
		}

		control.recordThrottle(1000);
		expect(control.pace?.ceiling).toBeCloseTo(400, 5);
	});

	it('keeps the wait as evidence when the instances change during it (nothing was gathered at the old share yet)', () => {
		const paceAfter = (changeDuringWait: boolean) => {
			const {clock, control} = afterFirstBurst();
			clock.advance(500); // Half-way through the 1 s wait.
			if (changeDuringWait) {
				control.setInstances(2);
				control.setInstances(1);
			}

			clock.advance(500);
			for (let bin = 0; bin < 20; bin++) {
				clock.advance(100);
				control.recordAccepted(60);
			}

			control.recordThrottle(1000);
			return control.pace;
		};

		expect(paceAfter(true)).toEqual(paceAfter(false));
	});

	it('keeps its rate when a throttle event comes with too little evidence (another client may have spent the budget)', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		control.recordAccepted(5);
		control.recordThrottle(1000);
		expect(control.rate).toBe(Number.POSITIVE_INFINITY);
		clock.advance(1500); // The gate reopened 500 ms ago.
		control.recordAccepted(300);
		control.recordThrottle(1000); // 300 accepted over 0.5 s since it reopened plus the 1 s wait: 200/s.
		expect(control.rate).toBeCloseTo(200, 5);
		expect(control.pace?.ceiling).toBe(Number.POSITIVE_INFINITY);
		clock.advance(1000);
		control.recordThrottle(1000); // Paced at 200 and throttled again: 200 is the ceiling now.
		expect(control.pace).toEqual({rate: 200 * paceDecrease, ceiling: 200, setAt: clock.now() + 1000});
	});
});

describe('paceAt and the refill', () => {
	const refill = 50;
	it.each([
		['no ceiling known (probing)', {rate: 40, ceiling: Number.POSITIVE_INFINITY, setAt: 0}],
		['at a fitted ceiling', {rate: 100, ceiling: 100, setAt: 0}],
	])('%s: a quarter of the rate on top while the refill lasts, nothing after', (_name, pace) => {
		const base = Math.min(pace.rate, pace.ceiling);
		const spendMs = (refill / (refillSpend * base)) * 1000;
		expect(paceAt({...pace, refill}, 500) - paceAt(pace, 500)).toBeCloseTo(refillSpend * base, 9);
		expect(paceAt({...pace, refill}, spendMs + 1)).toBeCloseTo(paceAt(pace, spendMs + 1), 6);
	});

	it('below a ceiling (a recovering pace that carries a refill, as a hand-edited record may): nothing on top, the recovery alone', () => {
		const pace = {rate: 92.5, ceiling: 100, setAt: 0};
		expect(paceAt({...pace, refill}, 500)).toBe(paceAt(pace, 500));
	});
});

describe('recordLimitWarning: Graph says 80% of the limit is spent', () => {
	it('unpaced: drops the concurrency to one (at most every 100 ms) and leaves the pace for the first 429 to set', () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		control.reserve(20);
		expect(control.concurrency).toBe(4);
		expect(control.recordLimitWarning(0.79)).toBeUndefined();
		expect(control.concurrency).toBe(4);
		expect(control.recordLimitWarning(0.85)).toEqual({eased: 'concurrency'});
		expect(control.concurrency).toBe(1);
		control.recordAccepted(20); // Grows back by one per round: 1, then 2.
		expect(control.concurrency).toBe(2);
		clock.advance(99);
		control.recordLimitWarning(0.9);
		expect(control.concurrency).toBe(2);
		clock.advance(1);
		control.recordLimitWarning(0.9);
		expect(control.concurrency).toBe(1);
		expect(control.pace).toBeUndefined();
		expect(control.rate).toBe(Number.POSITIVE_INFINITY);
	});

	it("keeps its ease when the shared record offers again the pace it eased from (the record is older news), follows the record's share of it, and gives it up for a pace set since", () => {
		const clock = fakeClock();
		const control = new ThroughputControl({maxConcurrency: 8, clock});
		const shared = {rate: 400, ceiling: 400, setAt: clock.now()};
		control.adopt(shared);
		clock.advance(3000);
		const eased = control.recordLimitWarning(0.9);
		expect(eased).toEqual({eased: 'pace', pace: {rate: 400 * paceDecrease, ceiling: 400, setAt: clock.now()}});
		clock.advance(1000); // The next exchange with the shared record, which knows nothing of the ease.
		control.adopt(shared);
		expect(control.pace).toEqual({rate: 400 * paceDecrease, ceiling: 400, setAt: clock.now() - 1000});
		control.adopt({...shared, rate: 200, ceiling: 200}); // A second instance joined: half of it.
		expect(control.pace).toEqual({rate: 200 * paceDecrease, ceiling: 200, setAt: clock.now() - 1000});
		const later = {rate: 300, ceiling: 300, setAt: clock.now() + 1000, refill: 100}; // Another instance's 429.
		control.adopt(later);
		expect(control.pace).toEqual(later);
		control.adopt(shared);
		expect(control.pace).toEqual(shared);
	});

	it('paced: eases from the pace in force; ignored while the gate is shut after a 429', () => {
		const {clock, control} = afterFirstBurst();
		expect(control.recordLimitWarning(0.95)).toBeUndefined(); // The gate reopens in 1 s.
		// A second 429 while paced, the bucket known: resumes at a fitted ceiling, spending the wait's refill on top.
		clock.advance(1000);
		for (let tenth = 0; tenth < 20; tenth++) {
			clock.advance(100);
			control.recordAccepted(60);
		}

		expect(control.recordThrottle(1000)?.refill).toBeGreaterThan(0);
		clock.advance(1500);
		// Spending the wait's refill above the fitted ceiling: the warning says the bucket is nearly spent, so the pace
		// drops from the ceiling, not from the rate with the refill on top; then at most once a second.
		const {ceiling} = control.pace!;
		expect(control.rate).toBeGreaterThan(ceiling);
		const eased = control.recordLimitWarning(0.95);
		expect(eased).toEqual({eased: 'pace', pace: {rate: ceiling * paceDecrease, ceiling, setAt: clock.now()}});
		clock.advance(999);
		expect(control.recordLimitWarning(0.95)).toBeUndefined();
		clock.advance(1);
		// Recovering from the first ease, still warned: down again from where the recovery had got to.
		const first = control.pace!;
		const reached = Math.min(paceAt(first, clock.now()), first.ceiling);
		expect(control.recordLimitWarning(0.95)).toEqual({eased: 'pace', pace: {rate: reached * paceDecrease, ceiling: reached, setAt: clock.now()}});
	});
});
