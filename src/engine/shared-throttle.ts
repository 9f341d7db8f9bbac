// The throttle state that every process working one queue shares: when Graph said to wait, and the pace the app as a
// whole has found. Graph throttles per app and tenant, so instances that each discover the throttle alone spend the
// budget several times over. The record holds no token and no pair: only times, rates and instance heartbeats.

import {maximumRetryAfterMs} from '../graph/retry-after.js';
import {averagePaces, scalePace, type Pace} from './pace.js';

export type {Pace} from './pace.js';

/**
 * While nothing is known of the pace, one instance finds it: the first to start while no other works holds this lease,
 * and instances that join meanwhile wait for its first throttle event (or the lease's end) instead of adding their own
 * unpaced burst: every operation in flight when Graph's bucket first runs dry is refused.
 */
export interface ProbeLease {
	readonly instance: string;
	/** When it was granted and when it lapses (epoch ms). */
	readonly since: number;
	readonly until: number;
}

/** How long a probe lease lasts: the most a joining instance waits for the prober. Defaults to 2 s. */
export const probeLeaseMs = 2000;

/** What every instance agrees on, as stored. Rates are the app's (all instances together). */
export interface ThrottleRecord {
	/** The gate is shut for everyone until then (epoch ms). */
	readonly reopenAt: number;
	/** When the last throttle event was recorded: a 429 for a request sent before this belongs to the same burst. */
	readonly closedAt: number;
	/** The app's pace; null until the first throttle event. */
	readonly pace: Pace | null;
	/** How many instances' estimates of the last burst `pace` averages (0 without a pace). */
	readonly estimates: number;
	/** Instance id -> last heartbeat (epoch ms), for instances working now. */
	readonly instances: Readonly<Record<string, number>>;
	/** Who probes for the pace; null when nobody does. */
	readonly probe: ProbeLease | null;
}

/** A throttle event one instance saw. */
export interface ThrottleNews {
	readonly reopenAt: number;
	/** When the throttled request was sent. */
	readonly sentAt: number;
	readonly closedAt: number;
	/**
	 * The instance's new pace: its own share, which the merge scales by the instances working as the record counts
	 * them when it is written (an instance's own count may be a second old); undefined when the event says nothing
	 * about the pace.
	 */
	readonly pace: Pace | undefined;
}

/** What an exchange hands back: the merged record and how many instances work now (this one included). */
export interface ThrottleSnapshot {
	readonly record: ThrottleRecord;
	readonly instances: number;
	/** False when the exchange could not write its news (it lost every race for the record): send it again. */
	readonly written?: boolean;
}

/**
 * Where the shared record lives. `exchange` records this instance's heartbeat and `news` (if any) and returns the
 * merged state; it rejects when the store cannot be reached (the caller then carries on alone).
 */
export interface ThrottleStore {
	exchange(instanceId: string, news: ThrottleNews | undefined, now: number, leaving?: boolean): Promise<ThrottleSnapshot>;
}

export const emptyThrottleRecord: ThrottleRecord = {reopenAt: 0, closedAt: 0, pace: null, estimates: 0, instances: {}, probe: null};

/** An instance whose last heartbeat is older than this is no longer counted as working. Defaults to 6 s. */
export const instanceTimeoutMs = 6000;

/**
 * The record is input like any other: written by peers whose clocks may be wrong, editable by hand. These bound what
 * a reader believes of it, relative to its own clock, so that no value stalls, starves or crashes an instance for
 * longer than Graph itself could ask.
 */
export const recordBounds = {
	/** The gate is believed shut at most this far ahead: a Retry-After's own bound (5 min). */
	maximumWaitMs: maximumRetryAfterMs,
	/**
	 * A heartbeat further ahead of the reader's clock than this is a clock gone badly wrong or a forgery: not counted
	 * (5 min, as for the gate). One within it counts until it is `instanceTimeoutMs` old in the reader's clock, so an
	 * instance stamped in the future stays counted at most that long after it stops.
	 */
	maximumHeartbeatAheadMs: maximumRetryAfterMs,
	/** Instances counted at most (a Flex Consumption app scales to 1,000). Defaults to 1,000. */
	maximumInstances: 1000,
	/** An app's pace, operations per second, is believed between these; outside them it is no pace at all. */
	minimumRate: 0.1,
	maximumRate: 1_000_000,
	/** A stored record longer than this is not read (it counts as empty). Defaults to 256 KiB. */
	maximumRecordBytes: 256 * 1024,
} as const;

/**
 * The record as a reader at `now` may believe it: the gate at most `maximumWaitMs` ahead, events and leases not in the
 * future (a lease at most its own length ahead), a pace set no later than the gate reopens, heartbeats from the future
 * dropped and the most recent `maximumInstances` kept, and a pace with absurd rates dropped.
 *
 * @example
 * clampThrottleRecord({...record, reopenAt: now + 86_400_000}, now).reopenAt // now + 300,000
 */
export function clampThrottleRecord(record: ThrottleRecord, now: number): ThrottleRecord {
	const reopenAt = Math.min(record.reopenAt, now + recordBounds.maximumWaitMs);
	const heartbeats = Object.entries(record.instances)
		.filter(([, seenAt]) => seenAt <= now + recordBounds.maximumHeartbeatAheadMs)
		.sort(([, a], [, b]) => b - a)
		.slice(0, recordBounds.maximumInstances);
	const pace = record.pace && saneRate(record.pace.rate) ? record.pace : null;
	return {
		reopenAt,
		closedAt: Math.min(record.closedAt, now),
		pace: pace && {
			rate: pace.rate,
			ceiling: saneRate(pace.ceiling) ? pace.ceiling : Number.POSITIVE_INFINITY,
			setAt: Math.min(pace.setAt, Math.max(now, reopenAt)),
			...(pace.refill !== undefined && pace.refill > 0 && pace.refill <= recordBounds.maximumRate ? {refill: pace.refill} : {}),
		},
		estimates: pace ? record.estimates : 0,
		instances: Object.fromEntries(heartbeats),
		probe: record.probe && {...record.probe, since: Math.min(record.probe.since, now), until: Math.min(record.probe.until, now + probeLeaseMs)},
	};
}

function saneRate(rate: number): boolean {
	return Number.isFinite(rate) && rate >= recordBounds.minimumRate && rate <= recordBounds.maximumRate;
}

/**
 * Merges one instance's heartbeat and news into the record: a pure function, so that two writers racing on an ETag
 * converge whatever order they land in. The gate only ever lengthens. A pace is replaced by news of a new burst (a
 * 429 for a request sent after the last recorded event); the estimates other instances make of the same burst are
 * averaged into it, so that one burst seen by six instances lowers the pace once, and no single instance's view of
 * its own share (the one that happened to send most, or to count the fewest instances) decides the app's pace.
 *
 * @example
 * mergeThrottleRecord(emptyThrottleRecord, 'a', {reopenAt: 2000, sentAt: 900, closedAt: 1000, pace}, 1000)
 */
export function mergeThrottleRecord(
	stored: ThrottleRecord,
	instanceId: string,
	news: ThrottleNews | undefined,
	now: number,
	leaving = false,
): ThrottleRecord {
	stored = clampThrottleRecord(stored, now);
	const instances: Record<string, number> = {};
	for (const [id, seenAt] of Object.entries(stored.instances)) {
		if (now - seenAt < instanceTimeoutMs && Number.isFinite(seenAt)) {
			instances[id] = seenAt;
		}
	}

	const joiningAlone = Object.keys(instances).length === 0;
	let {probe, pace} = stored;
	// An instance that runs out of work leaves at once, so that the others take its share without waiting for its
	// heartbeat to go stale (and, if it held the probe lease, without waiting for the lease either).
	if (leaving) {
		delete instances[instanceId];
		if (probe?.instance === instanceId) {
			probe = null;
		}
	} else {
		instances[instanceId] = now;
		if (joiningAlone) {
			probe = {instance: instanceId, since: now, until: now + probeLeaseMs};
			// The app was idle: its pace's climb starts again from where it was set, not from where the idle time took
			// it (time without work is no evidence that Graph would take more).
			pace &&= {...pace, setAt: Math.max(pace.setAt, now)};
		}
	}

	const record = {...stored, probe, pace};
	if (!news) {
		return {...record, instances};
	}

	// An estimate is of the sender's share among the instances working; the prober's first one is of the app's rate,
	// since the others waited for it.
	const probed = !stored.pace && probe?.instance === instanceId && news.sentAt < probe.until;
	const working = probed ? 1 : Math.max(1, Object.keys(instances).length);
	const estimate = news.pace && scalePace(news.pace, working);
	const reopenAt = Math.max(record.reopenAt, news.reopenAt);
	if (news.sentAt >= record.closedAt) {
		return {
			reopenAt,
			closedAt: Math.max(record.closedAt, news.closedAt),
			pace: estimate ?? record.pace,
			estimates: estimate ? 1 : record.estimates,
			instances,
			probe,
		};
	}

	if (!estimate || !record.pace) {
		return {...record, reopenAt, pace: record.pace ?? estimate ?? null, estimates: record.pace ? record.estimates : estimate ? 1 : 0, instances};
	}

	const averaged = averagePaces(record.pace, record.estimates, estimate);
	return {...record, reopenAt, pace: averaged.pace, estimates: averaged.count, instances};
}

/**
 * Until when an instance that is joining waits for another's probe: the lease's end while another instance holds it
 * and the app has no pace yet; 0 when it need not wait.
 */
export function probeWaitUntil(record: ThrottleRecord, instanceId: string, now: number): number {
	const {probe} = record;
	if (!probe || probe.instance === instanceId || now >= probe.until || record.pace) {
		return 0;
	}

	return probe.until;
}

export function snapshotOf(record: ThrottleRecord, now: number): ThrottleSnapshot {
	const instances = Object.values(record.instances).filter(seenAt => now - seenAt < instanceTimeoutMs).length;
	return {record, instances: Math.max(1, instances)};
}

/**
 * Reads a stored record defensively: anything malformed (another version, a hand edit) counts as empty rather than
 * as a reason to stop.
 */
export function parseThrottleRecord(text: string): ThrottleRecord {
	if (text.length > recordBounds.maximumRecordBytes) {
		return emptyThrottleRecord;
	}

	try {
		const value = JSON.parse(text) as Partial<ThrottleRecord>;
		const finite = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
		const pace = value.pace as Partial<Pace> | null | undefined;
		const instances: Record<string, number> = {};
		if (value.instances && typeof value.instances === 'object') {
			for (const [id, seenAt] of Object.entries(value.instances)) {
				if (typeof seenAt === 'number' && Number.isFinite(seenAt) && id.length <= 100) {
					instances[id] = seenAt;
				}
			}
		}

		const parsedPace =
			pace && typeof pace.rate === 'number' && pace.rate > 0 && typeof pace.setAt === 'number'
				? {
						rate: pace.rate,
						ceiling: typeof pace.ceiling === 'number' && pace.ceiling > 0 ? pace.ceiling : Number.POSITIVE_INFINITY,
						setAt: pace.setAt,
						...(typeof pace.refill === 'number' && pace.refill > 0 && Number.isFinite(pace.refill) ? {refill: pace.refill} : {}),
					}
				: null;
		const probe = value.probe as Partial<ProbeLease> | null | undefined;
		const parsedProbe =
			probe && typeof probe.instance === 'string' && probe.instance.length <= 100 && typeof probe.since === 'number' && typeof probe.until === 'number'
				? {instance: probe.instance, since: finite(probe.since), until: finite(probe.until)}
				: null;
		return {
			reopenAt: finite(value.reopenAt),
			closedAt: finite(value.closedAt),
			pace: parsedPace,
			estimates: parsedPace ? Math.max(1, Math.floor(finite(value.estimates))) : 0,
			instances,
			probe: parsedProbe,
		};
	} catch {
		return emptyThrottleRecord;
	}
}

/** JSON has no Infinity: an unknown ceiling is stored as null. */
export function serializeThrottleRecord(record: ThrottleRecord): string {
	return JSON.stringify({
		...record,
		pace: record.pace && {...record.pace, ceiling: Number.isFinite(record.pace.ceiling) ? record.pace.ceiling : null},
	});
}

/**
 * The store for one process (sharing off, the CLI's one-shot commands, tests that run several engines in one process):
 * the same merge, in memory.
 */
export class InProcessThrottleStore implements ThrottleStore {
	#record: ThrottleRecord = emptyThrottleRecord;

	async exchange(instanceId: string, news: ThrottleNews | undefined, now: number, leaving = false): Promise<ThrottleSnapshot> {
		this.#record = mergeThrottleRecord(this.#record, instanceId, news, now, leaving);
		return snapshotOf(this.#record, now);
	}
}
