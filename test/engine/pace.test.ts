// The pace as a model: each regime with its own examples, and the two transitions a throttle event makes.

import {describe, expect, it} from 'vitest';
import {averagePaces, firstPace, originOf, pacedPace, paceAt, paceDecrease, paceGrowth, plateauSeconds, probeGrowth, refillSpend, regimeAt, type Pace, type PaceRegime} from '../../src/engine/pace.js';

const seconds = (count: number) => count * 1000;

describe('regimeAt and paceAt, regime by regime', () => {
	const probing: Pace = {rate: 40, ceiling: Number.POSITIVE_INFINITY, setAt: 0};
	const fitted: Pace = {rate: 100, ceiling: 100, setAt: 0, refill: 50}; // The refill lasts 50 / 25 = 2 s.
	const below: Pace = {rate: 85, ceiling: 100, setAt: 0};
	it.each<[string, Pace, number, PaceRegime, number]>([
		['before setAt: its rate, whatever it is', probing, -500, 'waiting', 40],
		['no ceiling: a straight climb, +50% of the estimate per second', probing, seconds(1), 'probing', 40 * (1 + probeGrowth)],
		['no ceiling, 4 s on: triple the estimate', probing, seconds(4), 'probing', 40 * (1 + 4 * probeGrowth)],
		['a fitted ceiling, first second: the ceiling plus a quarter of it (spending the refill)', fitted, seconds(1), 'spending-refill', 100 * (1 + refillSpend)],
		['a fitted ceiling, refill spent: the plateau at the ceiling', fitted, seconds(2) + 1, 'holding', 100],
		['a fitted ceiling, end of the plateau', fitted, seconds(2 + plateauSeconds) - 1, 'holding', 100],
		['a fitted ceiling, one second past the plateau: CUBIC probes beyond', fitted, seconds(2 + plateauSeconds + 1), 'probing-beyond', 100 * (1 + paceGrowth)],
		['below a ceiling: CUBIC recovers, back at it after about 2 s', below, seconds(Math.cbrt((1 - 0.85) / paceGrowth)), 'recovering', 100],
		['below a ceiling, at once: the lowered rate', below, 1, 'recovering', 85],
	])('%s', (_name, pace, at, regime, rate) => {
		expect(regimeAt(pace, at)).toBe(regime);
		expect(paceAt(pace, at)).toBeCloseTo(rate, 1);
	});

	it('spends the refill on top while probing and at a fitted ceiling, only while it lasts; never while recovering', () => {
		expect(regimeAt({...below, refill: 20}, 100)).toBe('recovering');
		expect(paceAt({...below, refill: 20}, 100)).toBe(paceAt(below, 100));
		for (const pace of [probing, {...fitted, refill: undefined}]) {
			const withRefill = {...pace, refill: 20};
			const base = Math.min(pace.rate, pace.ceiling);
			expect(regimeAt(withRefill, 100)).toBe('spending-refill');
			expect(paceAt(withRefill, 100) - paceAt(pace, 100)).toBeCloseTo(refillSpend * base, 9);
			expect(regimeAt(withRefill, seconds(20 / (refillSpend * base)) + 1)).not.toBe('spending-refill');
		}
	});
});

describe('the pace a throttle event sets', () => {
	const evidence = {setAt: 5000, retryAfterMs: 1000, accepted: 600, intervalSeconds: 5, enough: true};

	it.each([
		['the first 429: what was accepted over the time and the wait; the rest was the bucket', {...evidence, accepted: 300, intervalSeconds: 1}, undefined, {rate: 150, ceiling: Number.POSITIVE_INFINITY, setAt: 5000, refill: 150}, 150],
		['the first 429 with a bucket known already', {...evidence, accepted: 300, intervalSeconds: 1}, 40, {rate: 150, ceiling: Number.POSITIVE_INFINITY, setAt: 5000, refill: 40}, 40],
		['too little accepted and no wait: no pace', {...evidence, accepted: 10, enough: false, retryAfterMs: 0}, undefined, undefined, undefined],
	])('%s', (_name, event, knownBucket, pace, bucket) => {
		const first = firstPace(event, knownBucket, 20);
		expect(first?.pace).toEqual(pace);
		expect(first?.bucket).toBe(bucket);
	});

	it.each([
		['paced at 120 with a bucket fitted at 100: resume at the ceiling, spending the refill', 120, 100, evidence, 400, {rate: 100, ceiling: 100, setAt: 5000, refill: 100}],
		['a fit above the pace: the ceiling is the pace the 429 came at', 80, 100, evidence, 400, {rate: 80, ceiling: 80, setAt: 5000, refill: 80}],
		['no bucket known (a pace adopted from another instance): drop below it and recover', 120, 100, evidence, undefined, {rate: 100 * paceDecrease, ceiling: 100, setAt: 5000}],
		['too little evidence: drop below the rate the 429 came at', 120, undefined, {...evidence, enough: false}, 400, {rate: 120 * paceDecrease, ceiling: 120, setAt: 5000}],
	])('%s', (_name, current, fitted, event, bucket, pace) => {
		expect(pacedPace(current, fitted, event, bucket)).toEqual(pace);
	});
});

describe('averagePaces: estimates of one burst, one rule per origin', () => {
	const first = (rate: number, refill?: number): Pace => ({rate, ceiling: Number.POSITIVE_INFINITY, setAt: 1000, ...(refill === undefined ? {} : {refill})});
	const fitted = (ceiling: number, refill: number): Pace => ({rate: ceiling, ceiling, setAt: 1000, refill});
	const decreased = (rate: number, ceiling: number): Pace => ({rate, ceiling, setAt: 1000});

	it.each<[string, Pace, number, Pace, Pace, number]>([
		['two floors: their mean, still probing, the refill averaged too', first(100, 50), 1, first(200, 150), first(150, 100), 2],
		['a floor into two: weighted by the estimates held', first(100, 60), 2, first(400, 0), first(200, 40), 3],
		['floors, one without a refill: no refill', first(100, 50), 1, first(200), first(150), 2],
		['two fitted ceilings: their mean, at the ceiling, the refills averaged', fitted(100, 50), 1, fitted(80, 30), fitted(90, 40), 2],
		['two decreases: rate and ceiling averaged, recovering, no refill', decreased(85, 100), 1, decreased(68, 80), decreased(76.5, 90), 2],
		['a fitted ceiling over a floor: the fitted one alone', first(300, 100), 3, fitted(120, 60), fitted(120, 60), 1],
		['a floor after a fitted ceiling: ignored', fitted(120, 60), 2, first(300, 100), fitted(120, 60), 2],
		['a decrease over a floor: the decrease alone', first(300, 100), 2, decreased(85, 100), decreased(85, 100), 1],
		['a fitted ceiling over a decrease: the fitted one alone', decreased(85, 100), 4, fitted(95, 20), fitted(95, 20), 1],
		['a decrease after a fitted ceiling: ignored', fitted(95, 20), 1, decreased(85, 100), fitted(95, 20), 1],
	])('%s', (_title, recorded, count, added, pace, estimates) => {
		const averaged = averagePaces(recorded, count, added);
		expect(averaged.pace.rate).toBeCloseTo(pace.rate, 9);
		expect(averaged.pace.ceiling).toBeCloseTo(pace.ceiling, 9);
		expect('refill' in averaged.pace).toBe(pace.refill !== undefined);
		if (pace.refill !== undefined) {
			expect(averaged.pace.refill).toBeCloseTo(pace.refill, 9);
		}
		expect(averaged.count).toBe(estimates);
		// Whatever meets, the result is a pace of one origin: never a recovering pace with a refill to spend.
		expect(originOf(averaged.pace)).toBe(originOf(pace));
	});

	it('keeps the recorded burst\'s start (setAt), whoever wins', () => {
		expect(averagePaces(first(100, 50), 1, {...fitted(90, 10), setAt: 1500}).pace.setAt).toBe(1000);
	});
});
