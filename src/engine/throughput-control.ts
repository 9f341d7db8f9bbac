// Adaptive concurrency and pacing: discovers how fast Graph will take work instead of being told.
//
// - Concurrency (HTTP requests in flight) starts at half the maximum, grows by one per window of successes (additive)
//   and halves on each throttle event (multiplicative), never above the maximum nor below one. With several instances
//   working, each starts at its share of that and grows that much slower, so that together they ramp up as one client
//   does: every request in flight when the bucket first runs dry is refused.
// - Pacing (operations per second) is off until the first throttle event. Then the rate is set to what Graph actually
//   accepted since the first request, spread over that time plus the Retry-After wait: a token-bucket throttle
//   refills during the wait, so this is its sustained rate, not the burst it allowed. That first estimate is low when
//   the wait is long (the bucket fills before the wait ends), so the rate then probes upward (`paceAt`), briskly while
//   no ceiling is known. What that first burst got through, less the estimate's share of it, is kept as the size of
//   the bucket; the wait put that back (or what the estimate refills in it), and the probe spends it on top.
// - Once a 429 comes while paced, the rate it came at is an overestimate (the bucket absorbed the excess for a while):
//   the ceiling is the rate of the token bucket that explains the 429 (`fittedRate`: what was accepted, bin by bin,
//   emptied a bucket of the size found). That is Graph's rate, not the rate the 429 came at, so the pace does not drop
//   below it: it resumes at the ceiling and, on top, spends what the wait put back in the bucket (every second paced
//   under the rate while the bucket is full is budget lost), holds the ceiling, then probes slowly beyond it as TCP
//   CUBIC does, so a ceiling that rose is found again and one that did not costs one throttle event per cycle.
//   Without a bucket to fit (a pace adopted from another instance) the rate drops to a fraction of the rate the 429
//   came at and climbs back as CUBIC does: fast to just below it, a plateau, then beyond.
// - The climb's clock runs only while the process holds work (RFC 7661's rule for an idle TCP window): a pace that
//   was not used while its messages sat invisible on the queue is no evidence that Graph would take more.
// - With several instances the pace is the app's (`ThrottleSync` shares it): this instance paces at its share.

import {systemClock, type Clock} from './clock.js';
import type {Pace} from './shared-throttle.js';

export interface ThroughputControlOptions {
	/** The ceiling on requests in flight (`GRAPH_MAX_CONCURRENCY`). */
	maxConcurrency: number;
	/** Defaults to half the maximum, at least 1. */
	initialConcurrency?: number;
	clock?: Clock;
}

/** The paced rate never drops below this (operations per second). */
const minimumRate = 1;
/** Accepted operations below which a throttle event says nothing about the sustained rate. */
const minimumEvidence = 20;
/** After a 429 at a paced rate, the rate drops to this share of it. Defaults to 0.85 (CUBIC's beta is 0.7; a token
 * bucket punishes overshoot less than a router queue drops packets, and every second below it is budget lost). */
export const paceDecrease = 0.85;
/**
 * CUBIC's C, relative to the ceiling: the rate is `ceiling * (1 + c * (t - K)^3)` with t in seconds since the pace was
 * set and K when it regains the ceiling. Defaults to 0.02: back at the ceiling 2 s after a 15% drop, 2% beyond it one
 * second later, 16% beyond it two seconds after that.
 */
export const paceGrowth = 0.02;
/**
 * While no ceiling is known (after the first throttle event, before a paced one) the first estimate is a floor, and
 * the rate climbs from it in a straight line: this share of the estimate per second. Defaults to 0.5: +50% after 1 s,
 * double after 2 s. A straight line rather than a curve because the bucket hides any overshoot until it is empty:
 * the steeper the climb at that moment, the more requests are in flight to be refused (a cubic that climbs as far in
 * the first seconds meets the 429 at about half again the pace).
 */
export const probeGrowth = 0.5;
/**
 * A Retry-After wait puts back what Graph refills in that time (at most the bucket): after the first throttle event and
 * after one whose ceiling was fitted to the bucket, the pace spends it on top of its rate, at this share of the rate.
 * Defaults to 0.25 (a full 1 s bucket is spent in 4 s): fast enough to use in a short run, gentle enough that a rate
 * a little high meets its 429 with few requests in flight.
 */
export const refillSpend = 0.25;
/** Once the refill is spent, the pace holds the fitted ceiling this long before probing beyond it. */
const plateauSeconds = 2;
/** The accepted-operations history that the ceiling is fitted to: bins of this width... */
const historyBinMs = 100;
/** ...and at most this many of them (the last minute). */
const historyBins = 600;
/** The fit ignores stretches shorter than this: a bucket's worth spread over a few bins says nothing of the rate. */
const minimumFitMs = 500;

/**
 * The refill rate of the token bucket that explains a 429 at the end of `history`: the smallest rate at which a bucket
 * of `bucket` operations, full at every point where the history leaves it full and holding what it refilled during the
 * `waitBeforeMs` that preceded the history, is empty after the operations accepted in `history` (bins of `binMs`,
 * oldest first, the last one ending at `elapsedMs`). For a bucket level L, L(end) = min(min(B, r W) + r T - C(0, T),
 * min over s of B + r (T - s) - C(s, T)); solving L(end) = 0 for r gives the largest of the per-term solutions.
 *
 * @example
 * // Under the rate for 4 s (the bucket stays full), then 600/s for 2 s: the 400-operation bucket ran out at 400/s.
 * fittedRate([...Array(40).fill(30), ...Array(20).fill(60)], 100, 6000, 2000, 400) // 400
 */
export function fittedRate(history: readonly number[], binMs: number, elapsedMs: number, waitBeforeMs: number, bucket: number): number {
	const total = history.reduce((sum, accepted) => sum + accepted, 0);
	let rate = total / ((elapsedMs + waitBeforeMs) / 1000);
	let suffix = 0;
	for (let bin = history.length - 1; bin >= 0; bin--) {
		suffix += history[bin]!;
		const span = elapsedMs - bin * binMs;
		if (span >= minimumFitMs) {
			rate = Math.max(rate, (suffix - bucket) / (span / 1000));
		}
	}

	return rate;
}

/**
 * The rate a pace allows at `now`: its own rate until `setAt`, then
 * - with no ceiling known yet, a straight climb by `probeGrowth` of the rate per second;
 * - at a fitted ceiling (rate = ceiling), the ceiling, a plateau of `plateauSeconds`, then the cubic probe past it;
 * - below a ceiling (nothing fitted), the cubic climb towards it and past it;
 * plus, while it lasts, the spending of what the wait refilled (`refill`, at `refillSpend` of the rate).
 *
 * @example
 * paceAt({rate: 85, ceiling: 100, setAt: 0}, 2000) // ~99.99: back at the ceiling after about 2 s
 * paceAt({rate: 100, ceiling: 100, setAt: 0, refill: 50}, 1000) // 125: spending the refill, for 2 s
 */
export function paceAt(pace: Pace, now: number): number {
	if (now <= pace.setAt) {
		return pace.rate;
	}

	const seconds = (now - pace.setAt) / 1000;
	// What the wait refilled is spent on top of the rate, at `refillSpend` of it.
	const base = Math.min(pace.rate, pace.ceiling);
	const spendSeconds = (pace.refill ?? 0) / (refillSpend * base);
	const spending = seconds < spendSeconds ? refillSpend * base : 0;
	if (!Number.isFinite(pace.ceiling)) {
		return pace.rate * (1 + probeGrowth * seconds) + spending;
	}

	if (pace.rate >= pace.ceiling) {
		// A fitted ceiling: spend what the wait refilled, hold the ceiling, then probe beyond it as the cubic does.
		return spending > 0 ? pace.ceiling + spending : pace.ceiling * (1 + paceGrowth * Math.max(0, seconds - spendSeconds - plateauSeconds) ** 3);
	}

	const ceiling = Math.max(pace.ceiling, pace.rate);
	const regainAt = Math.cbrt((1 - pace.rate / ceiling) / paceGrowth);
	return ceiling * (1 + paceGrowth * (seconds - regainAt) ** 3) + spending;
}

export class ThroughputControl {
	readonly #maximum: number;
	readonly #initial: number;
	readonly #clock: Clock;
	#concurrency: number;
	/** Instances working, this one included (`ThrottleSync` tells). */
	#instances = 1;
	/** This instance's pace; undefined until the first throttle event with evidence (or a shared pace) sets one. */
	#pace: Pace | undefined;
	#tokens = 0;
	#tokensAt = 0;
	#accepted = 0;
	#intervalStart: number;
	/** How long the gate was shut just before the interval started (the bucket refilled meanwhile). */
	#waitBeforeMs = 0;
	/** Operations accepted per `historyBinMs` since `#historyStart`, for `fittedRate`. */
	#history: number[] = [];
	#historyStart: number;
	/** The token bucket's size as this instance's first throttle event showed it; undefined before. */
	#bucket: number | undefined;
	#throttleEvents = 0;
	/** No request sent yet: the first interval starts with the first request, not with the process. */
	#unstarted = true;
	/** Time spent holding no work since the pace was set: the climb does not count it. */
	#idleMs = 0;
	/** When the process last ran out of work; undefined while it holds some. */
	#idleSince: number | undefined;

	constructor(options: ThroughputControlOptions) {
		if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1) {
			throw new TypeError(`Expected maxConcurrency to be a whole number from 1, got ${options.maxConcurrency}`);
		}

		this.#maximum = options.maxConcurrency;
		this.#clock = options.clock ?? systemClock;
		this.#initial = Math.min(this.#maximum, Math.max(1, options.initialConcurrency ?? Math.ceil(this.#maximum / 2)));
		this.#concurrency = this.#initial;
		this.#intervalStart = this.#clock.now();
		this.#historyStart = this.#intervalStart;
	}

	/** Requests allowed in flight now. */
	get concurrency(): number {
		return Math.max(1, Math.floor(this.#concurrency));
	}

	/** Operations per second allowed now; Infinity until the first throttle event. */
	get rate(): number {
		if (!this.#pace) {
			return Number.POSITIVE_INFINITY;
		}

		const now = this.#clock.now();
		return Math.max(minimumRate, paceAt(this.#pace, now - this.#idleMs - this.#idleSpell(now)));
	}

	/** How long the process has been out of work since the pace was set (0 while it holds some). */
	#idleSpell(now: number): number {
		return this.#idleSince === undefined ? 0 : Math.max(0, now - Math.max(this.#idleSince, this.#pace?.setAt ?? 0));
	}

	/** Whether the process holds work: the pace climbs only while it does. */
	setBusy(busy: boolean): void {
		const now = this.#clock.now();
		if (busy && this.#idleSince !== undefined) {
			this.#idleMs += this.#idleSpell(now);
			this.#idleSince = undefined;
		} else if (!busy && this.#idleSince === undefined) {
			this.#idleSince = now;
		}
	}

	/** This instance's pace, for sharing; undefined while unpaced. */
	get pace(): Pace | undefined {
		return this.#pace;
	}

	get throttleEvents(): number {
		return this.#throttleEvents;
	}

	/**
	 * Takes `operations` from the pacing budget and returns how long (ms) to wait before sending them: 0 when unpaced or
	 * when the budget holds them. The budget holds at most a tenth of a second's worth (or one request's operations).
	 */
	reserve(operations: number): number {
		if (this.#unstarted) {
			this.#unstarted = false;
			this.#restartInterval(this.#clock.now(), 0);
		}

		const rate = this.rate;
		if (!Number.isFinite(rate)) {
			return 0;
		}

		const now = this.#clock.now();
		const capacity = Math.max(operations, rate / 10);
		this.#tokens = Math.min(capacity, this.#tokens + ((now - this.#tokensAt) / 1000) * rate);
		this.#tokensAt = now;
		this.#tokens -= operations;
		return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / rate) * 1000);
	}

	/** A request came back without throttling, carrying `operations` accepted operations. */
	recordAccepted(operations: number): void {
		this.#accepted += operations;
		const bin = Math.max(0, Math.floor((this.#clock.now() - this.#historyStart) / historyBinMs));
		while (this.#history.length <= bin) {
			this.#history.push(0);
		}

		this.#history[bin]! += operations;
		if (this.#history.length > historyBins) {
			const dropped = this.#history.length - historyBins;
			this.#history.splice(0, dropped);
			this.#historyStart += dropped * historyBinMs;
		}

		this.#concurrency = Math.min(this.#maximum, this.#concurrency + 1 / (Math.max(1, Math.floor(this.#concurrency)) * this.#instances));
	}

	/** How many instances work now (this one included). Before the first request, the starting concurrency is shared. */
	setInstances(instances: number): void {
		this.#instances = Math.max(1, Math.floor(instances));
		if (this.#unstarted) {
			this.#concurrency = Math.max(1, Math.ceil(this.#initial / this.#instances));
		}
	}

	/**
	 * A throttle event: the first 429 of a burst (429s for requests sent before the gate closed are the same event and
	 * must not be passed here again). `retryAfterMs` is how long the gate stays shut. Returns the new pace.
	 */
	recordThrottle(retryAfterMs: number): Pace | undefined {
		const now = this.#clock.now();
		this.#throttleEvents++;
		this.#concurrency = Math.max(1, this.#concurrency / 2);
		const setAt = now + retryAfterMs;
		const current = this.rate;
		const interval = (now - this.#intervalStart) / 1000;
		const evidence = this.#accepted >= minimumEvidence && interval > 0;
		if (Number.isFinite(current)) {
			// Paced, and still too fast: the 429 came at `current`, or below it if the pace was not reached or another
			// client shares the budget. Remember the rate that explains it: resume at it when it was fitted to the
			// bucket, else drop below it, and climb back.
			const ceiling = Math.max(minimumRate, evidence ? Math.min(current, this.#fit(now, interval)) : current);
			this.#pace =
				evidence && this.#bucket !== undefined
					? {rate: ceiling, ceiling, setAt, refill: Math.min(this.#bucket, (ceiling * retryAfterMs) / 1000)}
					: {rate: Math.max(minimumRate, ceiling * paceDecrease), ceiling, setAt};
		} else if (evidence || (this.#accepted >= minimumEvidence && retryAfterMs > 0)) {
			// The first throttle: what was accepted, spread over that time and the wait (the bucket refills during it).
			// The rest of what got through was the bucket.
			const seconds = interval + retryAfterMs / 1000;
			const rate = Math.max(minimumRate, this.#accepted / seconds);
			this.#bucket ??= Math.max(minimumEvidence, this.#accepted - rate * Math.max(0, interval));
			// If the rate is at least the estimate (it is a floor when the wait was long enough to refill the bucket),
			// the wait put back the bucket, or what the estimate refills in it.
			this.#pace = {rate, ceiling: Number.POSITIVE_INFINITY, setAt, refill: Math.min(this.#bucket, (rate * retryAfterMs) / 1000)};
		}

		// Too few accepted operations say nothing of the ceiling (another client may have spent it): stay unpaced, and
		// let the halved concurrency and the gate do the backing off.
		this.#restartInterval(setAt, retryAfterMs);
		return this.#pace;
	}

	/** The ceiling a paced 429 shows: the fitted bucket rate, or (no bucket size known) what was accepted per second. */
	#fit(now: number, intervalSeconds: number): number {
		if (this.#bucket === undefined) {
			return this.#accepted / intervalSeconds;
		}

		// Past a minute the oldest bins are gone, and with them the wait that preceded them.
		const waitBeforeMs = this.#historyStart === this.#intervalStart ? this.#waitBeforeMs : 0;
		return fittedRate(this.#history, historyBinMs, now - this.#historyStart, waitBeforeMs, this.#bucket);
	}

	/**
	 * Takes the pace another instance found (already divided to this instance's share). The accepted count starts
	 * again, so the next estimate measures the pace in force.
	 */
	adopt(pace: Pace): void {
		const changed = this.#pace?.setAt !== pace.setAt;
		this.#pace = pace;
		if (changed) {
			const now = this.#clock.now();
			this.#restartInterval(Math.max(now, pace.setAt), Math.max(0, pace.setAt - now));
		}
	}

	#restartInterval(at: number, waitBeforeMs: number): void {
		this.#unstarted = false;
		this.#idleMs = 0;
		if (this.#idleSince !== undefined) {
			this.#idleSince = at;
		}

		this.#tokens = 0;
		this.#tokensAt = at;
		this.#accepted = 0;
		this.#intervalStart = at;
		this.#waitBeforeMs = waitBeforeMs;
		this.#history = [];
		this.#historyStart = at;
	}
}
