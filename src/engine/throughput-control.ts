// Adaptive concurrency and pacing: discovers how fast Graph will take work instead of being told.
//
// - Concurrency (HTTP requests in flight) starts at half the maximum, grows by one per window of successes (additive)
//   and halves on each throttle event (multiplicative), never above the maximum nor below one.
// - Pacing (operations per second) is off until the first throttle event. Then the rate is set to what Graph actually
//   accepted since the gate last opened, spread over that time plus the Retry-After wait: a token-bucket throttle
//   refills during the wait, so this is its sustained rate, not the burst it allowed. That first estimate is low when
//   the wait is long (the bucket fills before the wait ends), so the rate then probes upward (`paceAt`).
// - Once a 429 comes while paced, the rate it came at is the ceiling; the rate drops to a fraction of it and climbs
//   back as TCP CUBIC does: fast to just below the ceiling, a plateau there, then slowly beyond it, so a ceiling that
//   rose is found again and one that did not costs one throttle event per cycle.
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
 * The rate a pace allows at `now`: its own rate until `setAt`, then the cubic climb towards (and past) its ceiling.
 * With no ceiling known yet, the climb starts at once from the rate itself.
 *
 * @example
 * paceAt({rate: 85, ceiling: 100, setAt: 0}, 2000) // ~99.99: back at the ceiling after about 2 s
 */
export function paceAt(pace: Pace, now: number): number {
	if (now <= pace.setAt) {
		return pace.rate;
	}

	const seconds = (now - pace.setAt) / 1000;
	const ceiling = Number.isFinite(pace.ceiling) && pace.ceiling > pace.rate ? pace.ceiling : pace.rate;
	const regainAt = Math.cbrt((1 - pace.rate / ceiling) / paceGrowth);
	return ceiling * (1 + paceGrowth * (seconds - regainAt) ** 3);
}

export class ThroughputControl {
	readonly #maximum: number;
	readonly #clock: Clock;
	#concurrency: number;
	/** This instance's pace; undefined until the first throttle event with evidence (or a shared pace) sets one. */
	#pace: Pace | undefined;
	#tokens = 0;
	#tokensAt = 0;
	#accepted = 0;
	#intervalStart: number;
	#throttleEvents = 0;

	constructor(options: ThroughputControlOptions) {
		if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1) {
			throw new TypeError(`Expected maxConcurrency to be a whole number from 1, got ${options.maxConcurrency}`);
		}

		this.#maximum = options.maxConcurrency;
		this.#clock = options.clock ?? systemClock;
		this.#concurrency = Math.min(this.#maximum, Math.max(1, options.initialConcurrency ?? Math.ceil(this.#maximum / 2)));
		this.#intervalStart = this.#clock.now();
	}

	/** Requests allowed in flight now. */
	get concurrency(): number {
		return Math.max(1, Math.floor(this.#concurrency));
	}

	/** Operations per second allowed now; Infinity until the first throttle event. */
	get rate(): number {
		return this.#pace ? Math.max(minimumRate, paceAt(this.#pace, this.#clock.now())) : Number.POSITIVE_INFINITY;
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
		this.#concurrency = Math.min(this.#maximum, this.#concurrency + 1 / Math.max(1, Math.floor(this.#concurrency)));
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
			// Paced, and still too fast: the 429 came at `current`, or at what Graph accepted since the gate last
			// opened if that was less (the pace was not reached, or another client shares the budget). Remember it,
			// drop below it, climb back.
			const ceiling = evidence ? Math.min(current, this.#accepted / interval) : current;
			this.#pace = {rate: Math.max(minimumRate, ceiling * paceDecrease), ceiling: Math.max(minimumRate, ceiling), setAt};
		} else if (evidence || (this.#accepted >= minimumEvidence && retryAfterMs > 0)) {
			// The first throttle: what was accepted, spread over that time and the wait (the bucket refills during it).
			const seconds = interval + retryAfterMs / 1000;
			this.#pace = {rate: Math.max(minimumRate, this.#accepted / seconds), ceiling: Number.POSITIVE_INFINITY, setAt};
		}

		// Too few accepted operations say nothing of the ceiling (another client may have spent it): stay unpaced, and
		// let the halved concurrency and the gate do the backing off.
		this.#restartInterval(setAt);
		return this.#pace;
	}

	/**
	 * Takes the pace another instance found (already divided to this instance's share). The accepted count starts
	 * again, so the next estimate measures the pace in force.
	 */
	adopt(pace: Pace): void {
		const changed = this.#pace?.setAt !== pace.setAt;
		this.#pace = pace;
		if (changed) {
			this.#restartInterval(Math.max(this.#clock.now(), pace.setAt));
		}
	}

	#restartInterval(at: number): void {
		this.#tokens = 0;
		this.#tokensAt = at;
		this.#accepted = 0;
		this.#intervalStart = at;
	}
}
