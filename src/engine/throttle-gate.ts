// The throttle gate: one per process, shared by every request to Graph. A 429 closes it; nothing leaves until it reopens.
// Graph's throttling is scoped to the workload, and a call made during the penalty extends it, so one request's 429 is
// every request's signal to wait.

import {backoffDelay, type BackoffOptions} from './backoff.js';
import {systemClock, type Clock} from './clock.js';

/** A 429 without Retry-After, or Graph unreachable: 1 s doubling to 60 s, jittered. */
export const throttleBackoff: BackoffOptions = {baseMs: 1000, maximumMs: 60_000};

export interface ThrottleGateOptions {
	clock?: Clock;
	/** Used when a 429 carries no Retry-After. Defaults to 1 s doubling to at most 60 s, jittered. */
	backoff?: BackoffOptions;
	random?: () => number;
}

/**
 * @example
 * const gate = new ThrottleGate();
 * await gate.whenOpen(signal);
 * const sentAt = Date.now();
 * const response = await send();
 * if (response.status === 429) gate.close(retryAfterMs, sentAt); else gate.recordSuccess();
 */
export class ThrottleGate {
	readonly #clock: Clock;
	readonly #backoff: BackoffOptions;
	readonly #random: () => number;
	#reopenAt = 0;
	#closedAt = Number.NEGATIVE_INFINITY;
	#consecutiveCloses = 0;
	#closes = 0;

	constructor(options: ThrottleGateOptions = {}) {
		this.#clock = options.clock ?? systemClock;
		this.#backoff = options.backoff ?? throttleBackoff;
		this.#random = options.random ?? Math.random;
	}

	/** When the gate reopens (epoch ms); in the past when it is open. */
	get reopenAt(): number {
		return this.#reopenAt;
	}

	/** How many 429s closed or extended the gate. */
	get closes(): number {
		return this.#closes;
	}

	isOpen(): boolean {
		return this.#clock.now() >= this.#reopenAt;
	}

	/**
	 * Records a 429 for a request sent at `sentAt`. With a Retry-After the gate stays shut until then (never shortened).
	 * Without one it backs off exponentially; 429s for requests that left before the gate last closed are the same burst
	 * and do not grow the backoff. Returns true when this 429 starts a new burst (a throttle event).
	 */
	close(retryAfterMs: number | undefined, sentAt: number): boolean {
		const now = this.#clock.now();
		this.#closes++;
		const sameBurst = sentAt < this.#closedAt;
		let wait = retryAfterMs;
		if (wait === undefined) {
			wait = sameBurst ? 0 : backoffDelay(this.#consecutiveCloses, this.#backoff, this.#random);
		}

		if (!sameBurst) {
			this.#consecutiveCloses++;
			this.#closedAt = now;
		}

		this.#reopenAt = Math.max(this.#reopenAt, now + wait);
		return !sameBurst;
	}

	/**
	 * Another instance was told to wait until `reopenAt`: this one waits too. Requests already in flight that come back
	 * 429 belong to that burst, not to a new one.
	 */
	holdUntil(reopenAt: number): void {
		const now = this.#clock.now();
		if (reopenAt > this.#reopenAt && reopenAt > now) {
			this.#reopenAt = reopenAt;
			this.#closedAt = now;
		}
	}

	/** A request went through: the next 429 without Retry-After starts the backoff afresh. */
	recordSuccess(): void {
		this.#consecutiveCloses = 0;
	}

	/** Resolves once the gate is open (at once when it is); rejects when `signal` aborts. */
	async whenOpen(signal?: AbortSignal): Promise<void> {
		for (let wait = this.#reopenAt - this.#clock.now(); wait > 0; wait = this.#reopenAt - this.#clock.now()) {
			// eslint-disable-next-line no-await-in-loop -- the gate may be extended while we sleep
			await this.#clock.sleep(wait, signal);
		}
	}
}
