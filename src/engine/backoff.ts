// Exponential backoff with equal jitter: a wait drawn from [c/2, c), c = min(maximum, base * 2^n).

export interface BackoffOptions {
	/** The first wait's ceiling. */
	baseMs: number;
	/** No wait's ceiling is above this. */
	maximumMs: number;
}

/**
 * The wait before retry number `retry` (0 for the first retry). `random` is `Math.random` unless a test fixes it.
 * Half the ceiling is always waited, so a run of retries never collapses to zero (the "equal jitter" variant).
 *
 * @example
 * backoffDelay(2, {baseMs: 1000, maximumMs: 30_000}) // between 2000 and 4000
 */
export function backoffDelay(retry: number, options: BackoffOptions, random: () => number = Math.random): number {
	const ceiling = Math.min(options.maximumMs, options.baseMs * 2 ** Math.min(retry, 30));
	return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
