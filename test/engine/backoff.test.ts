import {describe, expect, it} from 'vitest';
import {backoffDelay} from '../../src/engine/backoff.js';

describe('backoffDelay', () => {
	const options = {baseMs: 1000, maximumMs: 30_000};

	it.each([
		[0, 500, 1000],
		[1, 1000, 2000],
		[2, 2000, 4000],
		[5, 15_000, 30_000],
		[40, 15_000, 30_000],
	])('retry %i waits from %i to %i ms (equal jitter: never less than half the ceiling)', (retry, low, high) => {
		expect(backoffDelay(retry, options, () => 0)).toBe(low);
		expect(backoffDelay(retry, options, () => 0.999_999)).toBe(high);
	});
});
