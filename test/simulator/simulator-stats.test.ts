import {describe, expect, it} from 'vitest';
import {countAnswer, emptyStats, timelineBinMs} from '../../src/simulator/simulator-stats.js';

describe('countAnswer', () => {
	it('counts each answer by status and in the timeline bin of its time since the first request', () => {
		const stats = emptyStats();
		stats.firstRequestAt = 10_000;
		countAnswer(stats, 204, 10_000);
		countAnswer(stats, 429, 10_000 + timelineBinMs - 1);
		countAnswer(stats, 204, 10_000 + 2 * timelineBinMs);
		countAnswer(stats, 503, 10_000 + 2 * timelineBinMs + 1);
		expect(stats.byStatus).toEqual({204: 2, 429: 1, 503: 1});
		expect(stats.timeline).toEqual([
			[1, 1, 0],
			[0, 0, 0],
			[1, 0, 1],
		]);
	});
});
