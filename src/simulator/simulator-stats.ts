// What the simulator counts while it serves: requests, operations, answers by status and route, and a timeline of
// answers, so that a test or the bench can read a client's behaviour after the fact.

export interface SimulatorStats {
	/** HTTP requests received (a `$batch` counts one). */
	requests: number;
	/** Operations attempted (each `$batch` item counts one). */
	operations: number;
	/**
	 * Answers by status, one per operation: each `$batch` item counts one (the envelope of a `$batch` answered item by
	 * item is not an operation; one answered whole counts its status once per item it carried).
	 */
	byStatus: Record<number, number>;
	/** The statuses of the `$batch` envelopes answered item by item (200, or 424 when items were throttled). */
	batchByStatus: Record<number, number>;
	/** Answers by route, e.g. `POST link` (see `RouteName`). */
	byRoute: Record<string, number>;
	peakConcurrency: number;
	/** `METHOD path` of every request that matched no route. */
	unmatched: string[];
	/** Requests that carried no valid token. */
	unauthorized: number;
	/** Connections dropped after a write was applied. */
	resets: number;
	/** `METHOD /version/path?query` of every Graph operation, with `logRequests`. */
	log: string[];
	/** When the first Graph request arrived and the last write was applied (epoch ms; 0 before). */
	firstRequestAt: number;
	lastWriteAt: number;
	/**
	 * Operations answered per `timelineBinMs` since the first request: `[2xx, 429, other]` for each bin, so that a
	 * client's pacing can be read after the fact (the bench writes it with `--logs`).
	 */
	timeline: Array<[number, number, number]>;
}

/** The width of one `SimulatorStats.timeline` bin. */
export const timelineBinMs = 250;

export function emptyStats(): SimulatorStats {
	return {
		requests: 0,
		operations: 0,
		byStatus: {},
		batchByStatus: {},
		byRoute: {},
		peakConcurrency: 0,
		unmatched: [],
		unauthorized: 0,
		resets: 0,
		log: [],
		firstRequestAt: 0,
		lastWriteAt: 0,
		timeline: [],
	};
}

/** Counts one operation's answer, in `byStatus` and in the timeline bin of `now`. */
export function countAnswer(stats: SimulatorStats, status: number, now: number): void {
	stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
	const bin = Math.max(0, Math.floor((now - (stats.firstRequestAt || now)) / timelineBinMs));
	while (stats.timeline.length <= bin) {
		stats.timeline.push([0, 0, 0]);
	}

	stats.timeline[bin]![status < 300 ? 0 : status === 429 ? 1 : 2]++;
}
