// Adaptive concurrency and pacing: discovers how fast Graph will take work instead of being told.
//
// - Concurrency (HTTP requests in flight) starts at half the maximum, grows by one per window of successes (additive)
//   and halves on each throttle event (multiplicative), never above the maximum nor below one.
// - Pacing (operations per second) is off until the first throttle event. Then the rate is set to what Graph actually
//   accepted since the gate last opened, spread over that time plus the Retry-After wait: a token-bucket throttle
//   refills during the wait, so this is its sustained rate, not the burst it allowed. While no throttle comes, the rate
//   probes upward (10% per second, compounded), so a ceiling that rises, or an estimate that was low, is found again.

import {systemClock, type Clock} from './clock.js';

export interface ThroughputControlOptions {
	/** The ceiling on requests in flight (`GRAPH_MAX_CONCURRENCY`). */
	maxConcurrency: number;
	/** Defaults to half the maximum, at least 1. */
	initialConcurrency?: number;
	/** Growth of the paced rate per second without throttling. Defaults to 0.1 (10%). */
	probeGrowthPerSecond?: number;
	clock?: Clock;
}

/** The paced rate never drops below this (operations per second). */
const minimumRate = 1;
/** Accepted operations below which a throttle event says nothing about the sustained rate. */
const minimumEvidence = 20;

export class ThroughputControl {
	readonly #maximum: number;
	readonly #clock: Clock;
	readonly #growth: number;
	#concurrency: number;
	#rate = Number.POSITIVE_INFINITY;
	#rateSetAt = 0;
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
		this.#growth = options.probeGrowthPerSecond ?? 0.1;
		this.#concurrency = Math.min(this.#maximum, Math.max(1, options.initialConcurrency ?? Math.ceil(this.#maximum / 2)));
		this.#intervalStart = this.#clock.now();
	}

	/** Requests allowed in flight now. */
	get concurrency(): number {
		return Math.max(1, Math.floor(this.#concurrency));
	}

	/** Operations per second allowed now; Infinity until the first throttle event. */
	get rate(): number {
		if (!Number.isFinite(this.#rate)) {
			return this.#rate;
		}

		const seconds = Math.max(0, this.#clock.now() - this.#rateSetAt) / 1000;
		return this.#rate * (1 + this.#growth) ** seconds;
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
	 * must not be passed here again). `retryAfterMs` is how long the gate stays shut.
	 */
	recordThrottle(retryAfterMs: number): void {
		const now = this.#clock.now();
		this.#throttleEvents++;
		this.#concurrency = Math.max(1, this.#concurrency / 2);
		const seconds = (now - this.#intervalStart + retryAfterMs) / 1000;
		// Too few accepted operations say nothing of the ceiling (another client may have spent it): keep the rate, and
		// let the halved concurrency and the gate do the backing off.
		if (this.#accepted >= minimumEvidence && seconds > 0) {
			this.#rate = Math.max(minimumRate, Math.min(this.rate, this.#accepted / seconds));
		} else {
			this.#rate = this.rate;
		}

		this.#rateSetAt = now + retryAfterMs;
		this.#tokens = 0;
		this.#tokensAt = this.#rateSetAt;
		this.#accepted = 0;
		this.#intervalStart = now + retryAfterMs;
	}
}
