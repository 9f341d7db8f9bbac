// sod-sync's metrics, through the OpenTelemetry API: what dashboards and alerts rely on, by these names exactly. The
// API records into whatever MeterProvider was started (telemetry.ts: OTLP or Application Insights); with none, into
// the API's no-op meter, which costs next to nothing.

import {metrics, ValueType, type Meter} from '@opentelemetry/api';
import type {LinkEngine} from '../engine/link-engine.js';
import type {MessageSummary, Outcome} from '../worker/pairs-handler.js';
import type {DeadLetterReason} from '../engine/retry-decision.js';

export const metricNames = {
	/** Counter of pairs by `outcome` (linked, already-linked, removed, already-absent, dead-letter, requeued), `reason` on dead letters. */
	pairs: 'sod_sync.pairs',
	/** Counter of Graph operations by `status`, the HTTP status of each (`$batch` items one by one; `none`: no answer). */
	operations: 'sod_sync.graph.operations',
	/** Counter of throttle events (the first 429 of a burst, or Graph unreachable), by `cause`. */
	throttleEvents: 'sod_sync.throttle.events',
	/** Gauge: operations per second this instance may send; absent while no pace is known. */
	pace: 'sod_sync.pace',
	/** Gauge: instances sharing the throttle state (this one included). */
	instances: 'sod_sync.instances',
	/** Histogram, seconds: how long a message's pairs had waited since they first entered the queue, when it settled. */
	messageAge: 'sod_sync.message.age',
	/** Gauge: messages in a queue (`queue`: pairs or dead-letter), as the queue service counts them (approximately). */
	queueMessages: 'sod_sync.queue.messages',
} as const;

/** The attributes each metric's points carry (a bounded set of values each): what the workbook and alerts may query. */
export const metricAttributes: Readonly<Record<keyof typeof metricNames, readonly string[]>> = {
	pairs: ['outcome', 'reason', 'kind'],
	operations: ['status'],
	throttleEvents: ['cause'],
	pace: [],
	instances: [],
	messageAge: [],
	queueMessages: ['queue'],
};

/** The queues `sod_sync.queue.messages` follows, by the role they play (bounded: never a queue's configured name). */
export type QueueRole = 'pairs' | 'dead-letter';

/** What `observeQueues` needs of a queue: its approximate message count (a `QueueClient` is one). */
export interface CountedQueue {
	getProperties(options?: {abortSignal?: AbortSignal}): Promise<{approximateMessagesCount?: number}>;
}

/** Buckets of `sod_sync.message.age`, seconds: from a second to past the default SOD_MAX_PAIR_AGE_HOURS (72). */
const ageBuckets = [1, 10, 60, 300, 900, 3_600, 4 * 3_600, 12 * 3_600, 24 * 3_600, 36 * 3_600, 48 * 3_600, 72 * 3_600];

/** A queue's count not read in this long is left out of a collection (the storage client would retry for minutes). */
const queueCountTimeoutMs = 5_000;

/**
 * No `correlation_id` attribute: every import would be a new series of every metric, without bound (a scheduled
 * reconcile alone makes one an hour). Per-import figures are the ledger's (`sod-sync status`).
 */
export class SodMetrics {
	readonly #pairs;
	readonly #operations;
	readonly #throttleEvents;
	readonly #messageAge;
	readonly #meter: Meter;

	constructor(meter: Meter = metrics.getMeter('sod-sync')) {
		this.#meter = meter;
		this.#pairs = meter.createCounter(metricNames.pairs, {description: 'Pairs settled, by outcome (and reason, for dead letters)', unit: '{pair}', valueType: ValueType.INT});
		this.#operations = meter.createCounter(metricNames.operations, {description: "Graph operations, by the HTTP status of each", unit: '{operation}', valueType: ValueType.INT});
		this.#throttleEvents = meter.createCounter(metricNames.throttleEvents, {description: 'Throttle events: the first 429 of a burst, or Graph unreachable', unit: '{event}', valueType: ValueType.INT});
		this.#messageAge = meter.createHistogram(metricNames.messageAge, {
			description: "Seconds a message's pairs had waited since they first entered the queue, when it settled",
			unit: 's',
			advice: {explicitBucketBoundaries: ageBuckets},
		});
	}

	/**
	 * Counts a settled message's pairs, by outcome (and reason, for dead letters) and `kind`: `package` or `group` rule.
	 * A pair that could not be read (`invalid-pair`, `invalid-message`) is of no kind: its points carry none.
	 */
	recordSummary(summary: Pick<MessageSummary, 'outcomes' | 'groupOutcomes' | 'deadLetters' | 'groupDeadLetters' | 'ageMs'>): void {
		this.#messageAge.record(summary.ageMs / 1000);
		const add = (count: number, attributes: Record<string, string>) => {
			if (count > 0) {
				this.#pairs.add(count, attributes);
			}
		};

		for (const [outcome, count] of Object.entries(summary.outcomes) as Array<[Outcome, number]>) {
			if (outcome !== 'dead-letter') {
				const groups = summary.groupOutcomes[outcome];
				add(count - groups, {outcome, kind: 'package'});
				add(groups, {outcome, kind: 'group'});
			}
		}

		for (const [reason, count] of Object.entries(summary.deadLetters) as Array<[DeadLetterReason, number]>) {
			const groups = summary.groupDeadLetters[reason] ?? 0;
			if (reason === 'invalid-pair' || reason === 'invalid-message') {
				add(count, {outcome: 'dead-letter', reason});
			} else {
				add(count - groups, {outcome: 'dead-letter', reason, kind: 'package'});
				add(groups, {outcome: 'dead-letter', reason, kind: 'group'});
			}
		}
	}

	/** Follows an engine: its requests and throttle events, its pace and instance count. Returns the unsubscribe. */
	observe(engine: LinkEngine): () => void {
		const stop = engine.events.on(
			event => {
				if (event.type === 'request') {
					for (const [status, count] of Object.entries(event.statuses)) {
						this.#operations.add(count, {status});
					}
				} else if (event.type === 'throttled') {
					this.#throttleEvents.add(1, {cause: event.cause});
				}
			},
			['request', 'throttled'],
		);
		const pace = this.#meter.createObservableGauge(metricNames.pace, {description: 'Operations per second this instance may send', unit: '{operation}/s'});
		const instances = this.#meter.createObservableGauge(metricNames.instances, {description: 'Instances sharing the throttle state', unit: '{instance}', valueType: ValueType.INT});
		const observePace = (result: {observe(value: number): void}) => {
			const rate = engine.control.rate;
			if (Number.isFinite(rate)) {
				result.observe(rate);
			}
		};

		const observeInstances = (result: {observe(value: number): void}) => {
			result.observe(engine.control.instances);
		};

		pace.addCallback(observePace);
		instances.addCallback(observeInstances);
		return () => {
			stop();
			pace.removeCallback(observePace);
			instances.removeCallback(observeInstances);
		};
	}

	/**
	 * Follows the queues' approximate message counts, read each time metrics are collected (`OTEL_METRIC_EXPORT_INTERVAL`,
	 * a minute by default). A count not read within 5 s is left out of that collection, never reported stale.
	 * Returns the unsubscribe.
	 */
	observeQueues(queues: Readonly<Record<QueueRole, CountedQueue>>): () => void {
		const gauge = this.#meter.createObservableGauge(metricNames.queueMessages, {description: 'Messages in the queue (approximate)', unit: '{message}', valueType: ValueType.INT});
		const roles = Object.keys(queues) as QueueRole[];
		const observe = async (result: {observe(value: number, attributes: {queue: QueueRole}): void}) => {
			const counts = await Promise.all(
				roles.map(async role =>
					queues[role].getProperties({abortSignal: AbortSignal.timeout(queueCountTimeoutMs)}).then(
						properties => properties.approximateMessagesCount,
						() => undefined,
					),
				),
			);
			roles.forEach((queue, index) => {
				const count = counts[index];
				if (count !== undefined) {
					result.observe(count, {queue});
				}
			});
		};

		gauge.addCallback(observe);
		return () => gauge.removeCallback(observe);
	}
}
