// The simulator's throttle: a token bucket per tenant (each operation, `$batch` items included, takes a token), the
// Retry-After it announces in the format asked for, and Dev Proxy's penalty window (a call before Retry-After has passed
// is refused again and extends the wait). Time comes from an injected clock, so that it is tested without sleeping.

export type RetryAfterFormat = 'seconds' | 'decimal' | 'http-date' | 'absent';

export interface ThrottleOptions {
	/** Operations per second the "tenant" allows (each `$batch` item counts one); unlimited when absent. */
	operationsPerSecond?: number;
	/** Operations that may be spent at once before the rate applies (a token bucket's size). Defaults to one second's worth. */
	burstOperations?: number;
	/** HTTP requests in flight at once before 429; unlimited when absent. */
	maxConcurrentRequests?: number;
	/** How `Retry-After` is written. Defaults to `seconds`. */
	retryAfter?: RetryAfterFormat;
	/** The wait announced in `Retry-After`. Defaults to 1 s (decimal format: the exact wait until a token, at least 0.5 s). */
	retryAfterSeconds?: number;
	/**
	 * Dev Proxy's model: a call made before Retry-After has passed gets another 429 and extends the penalty.
	 * Defaults to true.
	 */
	penaltyWindow?: boolean;
	/**
	 * The outer status of a `$batch` some of whose items were throttled: 200 (Microsoft's batching page) or 424 (its
	 * throttling page); the items carry their own 429 and Retry-After either way. Defaults to 200.
	 */
	batchStatusWhenThrottled?: 200 | 424;
	/**
	 * Sends `x-ms-throttle-limit-percentage` (the share of the bucket spent, `0.80` to `1.00`) on an accepted operation
	 * once 80% of the bucket is spent, as Graph documents it for directory resources: an early warning. Defaults to false.
	 */
	limitWarnings?: boolean;
}

/** The header Graph sends above 80% of a limit (documented for directory resources). */
export const limitPercentageHeader = 'x-ms-throttle-limit-percentage';

/**
 * @example
 * const model = new ThrottleModel({operationsPerSecond: 100}, () => clock);
 * const refusal = model.spend(); // undefined: accepted; otherwise the 429's headers
 */
export class ThrottleModel {
	readonly #options: ThrottleOptions;
	readonly #now: () => number;
	#tokens: number;
	#tokensAt: number;
	#penaltyUntil = 0;

	constructor(options: ThrottleOptions | undefined, now: () => number = Date.now) {
		this.#options = options ?? {};
		this.#now = now;
		this.#tokens = this.#bucketSize();
		this.#tokensAt = now();
	}

	/** Takes one operation's token: undefined when accepted, else the headers of the 429 that refuses it. */
	spend(): Record<string, string> | undefined {
		const rate = this.#options.operationsPerSecond;
		if (rate === undefined) {
			return undefined;
		}

		const now = this.#now();
		if ((this.#options.penaltyWindow ?? true) && now < this.#penaltyUntil) {
			return this.refuse();
		}

		this.#tokens = Math.min(this.#bucketSize(), this.#tokens + ((now - this.#tokensAt) / 1000) * rate);
		this.#tokensAt = now;
		if (this.#tokens >= 1) {
			this.#tokens -= 1;
			return undefined;
		}

		return this.refuse((1 - this.#tokens) / rate);
	}

	/**
	 * The early-warning header for the operation just accepted, when asked for (`limitWarnings`) and 80% or more of the
	 * bucket is spent; undefined otherwise.
	 */
	warning(): Record<string, string> | undefined {
		const size = this.#bucketSize();
		if (!this.#options.limitWarnings || this.#options.operationsPerSecond === undefined || size <= 0) {
			return undefined;
		}

		const used = 1 - this.#tokens / size;
		return used >= 0.8 ? {[limitPercentageHeader]: used.toFixed(2)} : undefined;
	}

	/** A refusal (too many requests in flight, or no token): its Retry-After header, and the penalty window opened. */
	refuse(secondsUntilToken = 1): Record<string, string> {
		const format = this.#options.retryAfter ?? 'seconds';
		const seconds = this.#options.retryAfterSeconds ?? (format === 'decimal' ? Math.max(0.5, secondsUntilToken) : 1);
		const now = this.#now();
		if (this.#options.penaltyWindow ?? true) {
			this.#penaltyUntil = now + seconds * 1000;
		}

		const headers: Record<string, string> = {};
		if (format === 'seconds') {
			headers['retry-after'] = String(Math.ceil(seconds));
		} else if (format === 'decimal') {
			headers['retry-after'] = seconds.toFixed(3);
		} else if (format === 'http-date') {
			// An HTTP-date has whole seconds: round up so that a caller honouring it never comes back early.
			headers['retry-after'] = new Date(Math.ceil((now + seconds * 1000) / 1000) * 1000).toUTCString();
		}

		return headers;
	}

	#bucketSize(): number {
		return this.#options.burstOperations ?? this.#options.operationsPerSecond ?? 0;
	}
}
