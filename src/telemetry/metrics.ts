// sod-sync's metrics, through the OpenTelemetry API: what dashboards and alerts rely on, by these names exactly. The
// API records into whatever MeterProvider was started (telemetry.ts: OTLP or Application Insights); with none, into
// the API's no-op meter, which costs next to nothing.

import {metrics, ValueType, type Meter} from '@opentelemetry/api';
import type {LinkEngine} from '../engine/link-engine.js';
import type {MessageSummary} from '../worker/pairs-handler.js';

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
} as const;

/**
 * No `correlation_id` attribute: every import would be a new series of every metric, without bound (a scheduled
 * reconcile alone makes one an hour). Per-import figures are the ledger's (`sod-sync status`).
 */
export class SodMetrics {
	readonly #pairs;
	readonly #operations;
	readonly #throttleEvents;
	readonly #meter: Meter;

	constructor(meter: Meter = metrics.getMeter('sod-sync')) {
		this.#meter = meter;
		this.#pairs = meter.createCounter(metricNames.pairs, {description: 'Pairs settled, by outcome (and reason, for dead letters)', unit: '{pair}', valueType: ValueType.INT});
		this.#operations = meter.createCounter(metricNames.operations, {description: "Graph operations, by the HTTP status of each", unit: '{operation}', valueType: ValueType.INT});
		this.#throttleEvents = meter.createCounter(metricNames.throttleEvents, {description: 'Throttle events: the first 429 of a burst, or Graph unreachable', unit: '{event}', valueType: ValueType.INT});
	}

	/** Counts a settled message's pairs, by outcome. */
	recordSummary(summary: Pick<MessageSummary, 'outcomes' | 'deadLetters'>): void {
		for (const [outcome, count] of Object.entries(summary.outcomes)) {
			if (count > 0 && outcome !== 'dead-letter') {
				this.#pairs.add(count, {outcome});
			}
		}

		for (const [reason, count] of Object.entries(summary.deadLetters)) {
			if (count) {
				this.#pairs.add(count, {outcome: 'dead-letter', reason});
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
}
