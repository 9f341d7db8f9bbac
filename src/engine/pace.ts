// The pace: how many operations per second this instance sends once Graph has throttled it, as a value with named
// regimes and pure functions from (pace, evidence, time) to the next pace. ThroughputControl holds one and asks it;
// the shared record (shared-throttle.ts) carries it between instances.
//
// How the pace is chosen after a 429:
// - The first 429 (no pace yet): what Graph accepted since the first request, spread over that time and the
//   Retry-After wait, is its sustained rate (a token bucket refills during the wait); what got through beyond that was
//   the bucket. That estimate is a floor, so the pace PROBES upward from it in a straight line.
// - A 429 while paced, with the bucket known: Graph's rate is the refill rate of the bucket that explains the 429
//   (`fittedRate`). The pace resumes AT that ceiling, first SPENDING what the wait put back in the bucket, then HOLDS
//   the ceiling for a plateau, then PROBES BEYOND it as TCP CUBIC does (a ceiling that rose is found again; one that
//   did not costs one throttle event per cycle).
// - A 429 while paced with no bucket known (a pace adopted from another instance): the pace drops to `paceDecrease`
//   of the rate the 429 came at and RECOVERS towards it along CUBIC's curve, then beyond. A recovering pace does not
//   spend a refill on top (one it carries comes from averaging instances' estimates in the shared record): it is
//   climbing already, and spending on top overshoots into the next penalty window (the six-process penalty-window
//   scenario of `npm run bench` lost budget with it).
// - An early warning (Graph's `x-ms-throttle-limit-percentage`, sent once 80% of a limit is spent) while paced is a 429
//   that did not happen yet: the pace drops to `paceDecrease` of the rate it came at (of the fitted ceiling, if it was
//   above it spending a refill), with no wait, and RECOVERS as after a paced 429 (`easedPace`), at most once a second.
//   Unpaced, a warning leaves the pace to the first 429, which is what measures the bucket and the rate (`firstPace`);
//   ThroughputControl drops the concurrency instead, so that few requests are in flight when the bucket runs out.
// Before `setAt` (the gate is still shut) the pace is WAITING at its rate.

/** A pace: `rate` operations/s set at `setAt` (epoch ms), growing back towards `ceiling` (see `paceAt`). */
export interface Pace {
	/** Operations per second at `setAt`. */
	readonly rate: number;
	/**
	 * The rate the last paced 429 showed (the refill rate of the bucket that explains it, or with no bucket size known,
	 * the rate it came at); Infinity while no paced request has been throttled.
	 */
	readonly ceiling: number;
	readonly setAt: number;
	/**
	 * Operations the Retry-After wait put back in Graph's bucket, spent on top of the rate once the gate reopens (see
	 * `paceAt`); absent when no bucket size is known.
	 */
	readonly refill?: number;
}

/** The paced rate never drops below this (operations per second). Defaults to 1. */
export const minimumRate = 1;
/**
 * After a 429 at a paced rate with no bucket to fit, the rate drops to this share of it. Defaults to 0.85 (CUBIC's
 * beta is 0.7; a token bucket punishes overshoot less than a router queue drops packets, and every second below it is
 * budget lost).
 */
export const paceDecrease = 0.85;
/**
 * CUBIC's C, relative to the ceiling: the rate is `ceiling * (1 + c * (t - K)^3)` with t in seconds since the pace was
 * set and K when it regains the ceiling. Defaults to 0.02: back at the ceiling 2 s after a 15% drop, 2% beyond it one
 * second later, 16% beyond it two seconds after that.
 */
export const paceGrowth = 0.02;
/**
 * While no ceiling is known the first estimate is a floor, and the rate climbs from it in a straight line: this share
 * of the estimate per second. Defaults to 0.5: +50% after 1 s, double after 2 s. A straight line rather than a curve
 * because the bucket hides any overshoot until it is empty: the steeper the climb at that moment, the more requests
 * are in flight to be refused.
 */
export const probeGrowth = 0.5;
/**
 * A Retry-After wait puts back what Graph refills in that time (at most the bucket): the pace spends it on top of its
 * rate, at this share of the rate. Defaults to 0.25 (a full 1 s bucket is spent in 4 s).
 */
export const refillSpend = 0.25;
/** Once the refill is spent, a pace at a fitted ceiling holds it this long before probing beyond it. Defaults to 2 s. */
export const plateauSeconds = 2;

/**
 * Which part of its life a pace is in at a moment:
 * - `waiting`: before `setAt` (the gate is still shut): its rate;
 * - `probing`: no ceiling known: a straight climb from the first estimate;
 * - `spending-refill`: the wait's refill is spent on top of the rate, while it lasts (probing, or at a fitted ceiling);
 * - `holding`: at a fitted ceiling, the plateau;
 * - `probing-beyond`: past the plateau, CUBIC's probe beyond the fitted ceiling;
 * - `recovering`: below a ceiling (nothing fitted), CUBIC's climb back towards it and beyond.
 */
export type PaceRegime = 'waiting' | 'probing' | 'spending-refill' | 'holding' | 'probing-beyond' | 'recovering';

/** The regime `pace` is in at `now`. */
export function regimeAt(pace: Pace, now: number): PaceRegime {
	if (now <= pace.setAt) {
		return 'waiting';
	}

	const seconds = (now - pace.setAt) / 1000;
	if (Number.isFinite(pace.ceiling) && pace.rate < pace.ceiling) {
		return 'recovering';
	}

	if (seconds < refillSeconds(pace)) {
		return 'spending-refill';
	}

	if (!Number.isFinite(pace.ceiling)) {
		return 'probing';
	}

	return seconds < refillSeconds(pace) + plateauSeconds ? 'holding' : 'probing-beyond';
}

/** How long the refill lasts, spent at `refillSpend` of the rate (0 without one). */
function refillSeconds(pace: Pace): number {
	return (pace.refill ?? 0) / (refillSpend * Math.min(pace.rate, pace.ceiling));
}

/**
 * The rate a pace allows at `now`: the underlying curve of its kind (the straight probe with no ceiling; the ceiling,
 * its plateau and CUBIC's probe beyond it at a fitted ceiling; CUBIC's recovery below one), plus, while it lasts and
 * except when recovering, the spending of the refill on top.
 *
 * @example
 * paceAt({rate: 85, ceiling: 100, setAt: 0}, 2000) // ~99.99: back at the ceiling after about 2 s
 * paceAt({rate: 100, ceiling: 100, setAt: 0, refill: 50}, 1000) // 125: spending the refill, for 2 s
 */
export function paceAt(pace: Pace, now: number): number {
	const seconds = (now - pace.setAt) / 1000;
	switch (regimeAt(pace, now)) {
		case 'waiting': {
			return pace.rate;
		}

		case 'probing': {
			return pace.rate * (1 + probeGrowth * seconds);
		}

		case 'spending-refill': {
			// On top of the straight probe with no ceiling known, or of the fitted ceiling.
			const spending = refillSpend * Math.min(pace.rate, pace.ceiling);
			return (Number.isFinite(pace.ceiling) ? pace.ceiling : pace.rate * (1 + probeGrowth * seconds)) + spending;
		}

		case 'holding': {
			return pace.ceiling;
		}

		case 'probing-beyond': {
			return pace.ceiling * (1 + paceGrowth * (seconds - refillSeconds(pace) - plateauSeconds) ** 3);
		}

		case 'recovering': {
			// CUBIC's climb, no refill on top (see the file's opening).
			const regainAt = Math.cbrt((1 - pace.rate / pace.ceiling) / paceGrowth);
			return pace.ceiling * (1 + paceGrowth * (seconds - regainAt) ** 3);
		}
	}
}

/** What a throttle event shows, for choosing the next pace. */
export interface ThrottleEvidence {
	/** When the gate reopens: the next pace is set then. */
	readonly setAt: number;
	readonly retryAfterMs: number;
	/** Operations Graph accepted since the pace in force was set (or since the first request). */
	readonly accepted: number;
	/** Seconds over which they were accepted. */
	readonly intervalSeconds: number;
	/** Whether that is enough to say anything of Graph's rate (`minimumEvidence` operations or more). */
	readonly enough: boolean;
}

/**
 * The first pace, from the first throttle event: what was accepted, spread over that time and the wait, and the bucket
 * that the rest shows (unless one is known). Undefined when the event says nothing of the rate.
 *
 * @example
 * firstPace({setAt: 2000, retryAfterMs: 1000, accepted: 300, intervalSeconds: 1, enough: true}, undefined)
 * // {pace: {rate: 150, ceiling: Infinity, setAt: 2000, refill: 150}, bucket: 150}
 */
export function firstPace(evidence: ThrottleEvidence, knownBucket: number | undefined, minimumBucket: number): {pace: Pace; bucket: number} | undefined {
	if (!evidence.enough && !(evidence.accepted >= minimumBucket && evidence.retryAfterMs > 0)) {
		return undefined;
	}

	const seconds = evidence.intervalSeconds + evidence.retryAfterMs / 1000;
	const rate = Math.max(minimumRate, evidence.accepted / seconds);
	const bucket = knownBucket ?? Math.max(minimumBucket, evidence.accepted - rate * Math.max(0, evidence.intervalSeconds));
	// The rate is a floor when the wait was long enough to refill the bucket: the wait put back the bucket, or what the
	// estimate refills in it.
	return {pace: {rate, ceiling: Number.POSITIVE_INFINITY, setAt: evidence.setAt, refill: Math.min(bucket, (rate * evidence.retryAfterMs) / 1000)}, bucket};
}

/**
 * The pace after a 429 that came while paced at `current` operations/s. With enough evidence and a bucket size known,
 * `fitted` (the bucket's refill rate) is Graph's rate: resume at it, spending the refill. Otherwise drop below the rate
 * the 429 came at and recover.
 *
 * @example
 * pacedPace(120, 100, {setAt: 5000, retryAfterMs: 1000, accepted: 600, intervalSeconds: 5, enough: true}, 400)
 * // {rate: 100, ceiling: 100, setAt: 5000, refill: 100}
 */
export function pacedPace(current: number, fitted: number | undefined, evidence: ThrottleEvidence, bucket: number | undefined): Pace {
	const ceiling = Math.max(minimumRate, evidence.enough && fitted !== undefined ? Math.min(current, fitted) : current);
	return evidence.enough && bucket !== undefined
		? {rate: ceiling, ceiling, setAt: evidence.setAt, refill: Math.min(bucket, (ceiling * evidence.retryAfterMs) / 1000)}
		: {rate: Math.max(minimumRate, ceiling * paceDecrease), ceiling, setAt: evidence.setAt};
}

/**
 * The pace after an early warning while `pace` allowed `current` operations/s: a decrease from that rate (or from the
 * fitted ceiling, when the pace was above it spending a refill: the warning says the bucket is nearly spent), recovering
 * towards it as after a paced 429 without a bucket, set now: nothing was refused, so nothing waits.
 *
 * @example
 * easedPace({rate: 100, ceiling: 100, setAt: 0, refill: 100}, 125, 5000) // {rate: 85, ceiling: 100, setAt: 5000}
 */
export function easedPace(pace: Pace, current: number, now: number): Pace {
	const ceiling = Math.max(minimumRate, Number.isFinite(pace.ceiling) ? Math.min(current, pace.ceiling) : current);
	return {rate: Math.max(minimumRate, ceiling * paceDecrease), ceiling, setAt: now};
}

/**
 * What a pace was made from, which decides how estimates of one burst average (`averagePaces`):
 * - `first`: the first throttle event's estimate, a floor with no ceiling (`firstPace`);
 * - `fitted`: resumed at a fitted ceiling, with the wait's refill (`pacedPace` with a bucket known);
 * - `decreased`: dropped below the rate a paced 429 came at, recovering towards it (`pacedPace` without a bucket).
 */
export type PaceOrigin = 'first' | 'fitted' | 'decreased';

export function originOf(pace: Pace): PaceOrigin {
	if (!Number.isFinite(pace.ceiling)) {
		return 'first';
	}

	return pace.refill !== undefined && pace.rate >= pace.ceiling ? 'fitted' : 'decreased';
}

/** Which origin's estimate outweighs another's: a fitted ceiling over a decrease from a rate, both over a floor. */
const originWeight: Record<PaceOrigin, number> = {first: 0, decreased: 1, fitted: 2};

/**
 * The shared record's pace after another instance's estimate of the same burst: the mean of the `count` estimates it
 * holds and `added`, field by field within one origin, so that the result is a pace of that origin again (a fitted
 * pace stays at its ceiling with a refill; a decreased one recovers, with none; a first one probes). Of estimates of
 * different origins the better informed stands alone (`originWeight`): averaging a fitted pace with a floor made a
 * recovering pace carrying a refill, which no rule of `paceAt` spends.
 *
 * @example
 * averagePaces({rate: 100, ceiling: 100, setAt: 0, refill: 50}, 1, {rate: 80, ceiling: 80, setAt: 0, refill: 30})
 * // {pace: {rate: 90, ceiling: 90, setAt: 0, refill: 40}, count: 2}
 */
export function averagePaces(recorded: Pace, count: number, added: Pace): {pace: Pace; count: number} {
	const origin = originOf(recorded);
	const addedOrigin = originOf(added);
	if (originWeight[addedOrigin] > originWeight[origin]) {
		return {pace: {...added, setAt: recorded.setAt}, count: 1};
	}

	if (originWeight[addedOrigin] < originWeight[origin]) {
		return {pace: recorded, count};
	}

	const n = Math.max(1, count);
	const mean = (stored: number, value: number) => (stored * n + value) / (n + 1);
	const setAt = recorded.setAt;
	switch (origin) {
		case 'first': {
			const refill = recorded.refill === undefined || added.refill === undefined ? {} : {refill: mean(recorded.refill, added.refill)};
			return {pace: {rate: mean(recorded.rate, added.rate), ceiling: Number.POSITIVE_INFINITY, setAt, ...refill}, count: n + 1};
		}

		case 'fitted': {
			const ceiling = mean(recorded.ceiling, added.ceiling);
			return {pace: {rate: ceiling, ceiling, setAt, refill: mean(recorded.refill!, added.refill!)}, count: n + 1};
		}

		case 'decreased': {
			return {pace: {rate: mean(recorded.rate, added.rate), ceiling: mean(recorded.ceiling, added.ceiling), setAt}, count: n + 1};
		}
	}
}

/** A pace times `factor`: an instance's share scaled to the app's (or, with 1 / instances, back). */
export function scalePace(pace: Pace, factor: number): Pace {
	return {
		rate: pace.rate * factor,
		ceiling: pace.ceiling * factor,
		setAt: pace.setAt,
		...(pace.refill === undefined ? {} : {refill: pace.refill * factor}),
	};
}
