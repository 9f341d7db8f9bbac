// SodMetrics on the OpenTelemetry SDK itself (no exporter, no process): what each instrument records, read back with
// a MetricReader's collect, as any exporter would be handed it.

import {DataPointType, MeterProvider, MetricReader, type MetricData} from '@opentelemetry/sdk-metrics';
import {describe, expect, it} from 'vitest';
import {metricNames, SodMetrics, type CountedQueue} from '../../src/telemetry/metrics.js';

class CollectingReader extends MetricReader {
	protected override async onShutdown(): Promise<void> {}
	protected override async onForceFlush(): Promise<void> {}
}

async function collected(reader: CollectingReader): Promise<Map<string, MetricData>> {
	const {resourceMetrics} = await reader.collect();
	return new Map(resourceMetrics.scopeMetrics.flatMap(scope => scope.metrics).map(metric => [metric.descriptor.name, metric]));
}

function meterWithReader() {
	const reader = new CollectingReader();
	const provider = new MeterProvider({readers: [reader]});
	return {reader, metrics: new SodMetrics(provider.getMeter('sod-sync'))};
}

const queue = (count: number | Error): CountedQueue => ({
	getProperties: async () => {
		if (count instanceof Error) {
			throw count;
		}

		return {approximateMessagesCount: count};
	},
});

describe('SodMetrics', () => {
	it('records one message age per settled message, in seconds, with its pairs counted by outcome, reason and kind of rule', async () => {
		const {reader, metrics} = meterWithReader();
		const none = {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0};
		metrics.recordSummary({
			outcomes: {...none, linked: 18, 'dead-letter': 4},
			groupOutcomes: {...none, linked: 3, 'dead-letter': 1},
			deadLetters: {'not-found': 3, 'invalid-pair': 1},
			groupDeadLetters: {'not-found': 1},
			ageMs: 90_000,
		});
		metrics.recordSummary({outcomes: {...none, requeued: 5}, groupOutcomes: none, deadLetters: {}, groupDeadLetters: {}, ageMs: 1_500});
		const data = await collected(reader);
		const age = data.get(metricNames.messageAge)!;
		expect(age.dataPointType).toBe(DataPointType.HISTOGRAM);
		expect(age.descriptor.unit).toBe('s');
		const [point] = age.dataPoints as Array<{value: {count: number; sum: number; min: number; max: number}}>;
		expect(point!.value).toMatchObject({count: 2, sum: 91.5, min: 1.5, max: 90});
		const pairs = data.get(metricNames.pairs)!.dataPoints.map(each => [each.attributes, each.value]);
		// An invalid pair is of no kind: its point carries none.
		expect(pairs).toHaveLength(6);
		expect(pairs).toEqual(
			expect.arrayContaining([
				[{outcome: 'linked', kind: 'package'}, 15],
				[{outcome: 'linked', kind: 'group'}, 3],
				[{outcome: 'requeued', kind: 'package'}, 5],
				[{outcome: 'dead-letter', reason: 'not-found', kind: 'package'}, 2],
				[{outcome: 'dead-letter', reason: 'not-found', kind: 'group'}, 1],
				[{outcome: 'dead-letter', reason: 'invalid-pair'}, 1],
			]),
		);
	});

	it('observes each queue\'s count when collected, leaves out one it cannot read, and stops when unsubscribed', async () => {
		const {reader, metrics} = meterWithReader();
		let pending = 40;
		let reads = 0;
		const counted: CountedQueue = {
			getProperties: async () => {
				reads++;
				return {approximateMessagesCount: pending};
			},
		};
		const stop = metrics.observeQueues({pairs: counted, 'dead-letter': queue(new Error('403'))});
		const first = await collected(reader);
		expect(first.get(metricNames.queueMessages)!.dataPoints.map(point => [point.attributes, point.value])).toEqual([[{queue: 'pairs'}, 40]]);
		pending = 3; // Read again at every collection, never cached.
		expect((await collected(reader)).get(metricNames.queueMessages)!.dataPoints.map(point => point.value)).toEqual([3]);
		expect(reads).toBe(2);
		stop();
		await collected(reader);
		expect(reads).toBe(2);
	});
});
