// Metrics as an operator's backend receives them: `sod-sync run` exporting over OTLP/HTTP (JSON and protobuf) to a
// local receiver, checked against the run's own report and the simulator's counts; several processes add up; with no
// exporter configured, nothing starts.

import {describe, expect, it} from 'vitest';
import {metricNames} from '../../src/telemetry/metrics.js';
import {startTelemetry, telemetryChoice} from '../../src/telemetry/telemetry.js';
import {runInProcess, spawnCli} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {attributeKey, startOtlpReceiver} from '../support/otlp-receiver.js';
import {certificatePath, startAppInsightsReceiver} from '../support/app-insights-receiver.js';

const local = useLocalStack({blob: true});

function csv(rows: ReadonlyArray<readonly [string, string]>): string {
	return `accessPackageId,incompatibleAccessPackageId\n${rows.map(([a, b]) => `${a},${b}`).join('\n')}\n`;
}

/** The run report's outcome table: `  linked   296` lines. */
function reported(output: string): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const [, name, count] of output.matchAll(/^ {2}(linked|already-linked|removed|already-absent|dead-letter|requeued) +([\d,]+)/gm)) {
		counts[name!] = (counts[name!] ?? 0) + Number(count!.replaceAll(',', ''));
	}

	return counts;
}

function sumBy(totals: Map<string, number>, attribute: string): Record<string, number> {
	const sums: Record<string, number> = {};
	for (const [key, value] of totals) {
		const name = String((JSON.parse(key) as Record<string, unknown>)[attribute]);
		sums[name] = (sums[name] ?? 0) + value;
	}

	return sums;
}

describe('metrics over OTLP', () => {
	for (const [protocol, processes] of [
		['http/json', 1],
		['http/protobuf', 2],
	] as const) {
		it(`${protocol}, ${processes} process(es): the names, and counts equal to the run report and the simulator's`, async () => {
			const receiver = await startOtlpReceiver();
			const startedAt = Date.now();
			try {
				const {simulator, ids, environment, pairsQueue} = await local.startQueues({
					packageCount: 30,
					throttle: {operationsPerSecond: 150, retryAfterSeconds: 1},
					faults: {latencyMs: 5, jitterMs: 5},
				});
				simulator.link(ids[0]!, ids[1]!); // Already there: already-linked.
				const unknown = '00000000-0000-4000-a000-000000000404';
				const rows = [...ids.flatMap(a => ids.filter(b => b !== a).map(b => [a, b] as const)).slice(0, 400), [ids[2]!, unknown] as const];
				expect((await runInProcess(['enqueue', '-'], environment, csv(rows))).code).toBe(0);
				// A producer's message with a pair that is not one: dead-lettered invalid-pair.
				await pairsQueue.sendMessage(Buffer.from(JSON.stringify([{accessPackageId: ids[3], incompatibleAccessPackageId: 'nope'}])).toString('base64'));
				const settings = {
					...environment,
					SOD_NOT_FOUND_RETRIES: '0',
					OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
					OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
					OTEL_METRIC_EXPORT_INTERVAL: '500',
				};
				const runs = Array.from({length: processes}, () => spawnCli(['run', '--until-empty'], settings));
				expect(await Promise.all(runs.map(async run => run.exited))).toEqual(runs.map(() => 0));
				expect(receiver.contentTypes.every(type => type.startsWith(protocol === 'http/json' ? 'application/json' : 'application/x-protobuf'))).toBe(true);
				expect(new Set(receiver.points.map(point => point.instance)).size).toBe(processes);

				// sod_sync.pairs per outcome: the run reports', added over the processes.
				const pairs = receiver.totals(metricNames.pairs);
				const byOutcome = sumBy(pairs, 'outcome');
				const report = runs.map(run => reported(run.output())).reduce<Record<string, number>>((sum, counts) => {
					for (const [name, count] of Object.entries(counts)) {
						sum[name] = (sum[name] ?? 0) + count;
					}

					return sum;
				}, {});
				expect(Object.fromEntries(Object.entries(byOutcome).filter(([, count]) => count > 0))).toEqual(
					Object.fromEntries(Object.entries(report).filter(([, count]) => count > 0)),
				);
				expect(byOutcome.linked).toBe(simulator.allLinks().length - 1);
				expect(pairs.get(attributeKey({outcome: 'dead-letter', reason: 'not-found', kind: 'package'}))).toBe(1);
				expect(pairs.get(attributeKey({outcome: 'dead-letter', reason: 'invalid-pair'}))).toBe(1);

				// sod_sync.graph.operations per status: the simulator's own count of the operations it answered.
				const byStatus = sumBy(receiver.totals(metricNames.operations), 'status');
				const simulated = Object.fromEntries(Object.entries(simulator.stats.byStatus).map(([status, count]) => [status, count]));
				expect(byStatus).toEqual(simulated);
				expect(byStatus['429']).toBeGreaterThan(0);

				// Throttled, so a throttle event, a pace and the instance count.
				expect([...receiver.totals(metricNames.throttleEvents).values()].reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
				expect(receiver.points.some(point => point.metric === metricNames.pace && point.kind === 'gauge' && point.value > 0)).toBe(true);
				expect(receiver.points.some(point => point.metric === metricNames.instances && point.kind === 'gauge' && point.value >= 1)).toBe(true);

				// sod_sync.message.age: one value per message settled (each logs one line), none older than the test.
				const settledMessages = runs.reduce((sum, run) => sum + run.output().split('\n').filter(line => line.startsWith('sod-sync message ')).length, 0);
				expect([...receiver.totals(metricNames.messageAge).values()].reduce((sum, count) => sum + count, 0)).toBe(settledMessages);
				const ages = receiver.points.filter(point => point.metric === metricNames.messageAge);
				// A message's insertion time comes from the queue in whole seconds (RFC 1123): an age may read up to 1 s long.
				expect(ages.every(point => point.kind === 'histogram' && point.histogram!.min >= 0 && point.histogram!.max < (Date.now() - startedAt) / 1000 + 1)).toBe(true);
				// sod_sync.queue.messages, as each run ended: the pairs queue empty, the dead-letter queue holding the two.
				const lastCounts = receiver.totals(metricNames.queueMessages);
				expect(lastCounts.get(attributeKey({queue: 'pairs'}))).toBe(0);
				expect(lastCounts.get(attributeKey({queue: 'dead-letter'}))).toBe(2 * processes);
				for (const run of runs) {
					expect(run.output()).toContain(`sod-sync: metrics to ${receiver.url}/v1/metrics (OTLP ${protocol})`);
				}
			} finally {
				await receiver.close();
			}
		}, 90_000);
	}

	it('Application Insights: the same names and counts, as the exporter sends them (deltas, attributes as properties)', async () => {
		const receiver = await startAppInsightsReceiver();
		try {
			const {simulator, ids, environment} = await local.startQueues({packageCount: 20, throttle: {operationsPerSecond: 150, retryAfterSeconds: 1}, faults: {latencyMs: 5, jitterMs: 5}});
			const rows = ids.flatMap(a => ids.filter(b => b !== a).map(b => [a, b] as const)).slice(0, 300);
			expect((await runInProcess(['enqueue', '-'], environment, csv(rows))).code).toBe(0);
			const settings = {
				...environment,
				APPLICATIONINSIGHTS_CONNECTION_STRING: receiver.connectionString,
				// The SDK's own usage reports go to Microsoft, not to the connection string's endpoint: off in tests.
				APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
				NODE_EXTRA_CA_CERTS: certificatePath,
				OTEL_METRIC_EXPORT_INTERVAL: '500',
			};
			const run = spawnCli(['run', '--until-empty'], settings);
			expect(await run.exited).toBe(0);
			expect(run.output()).toContain(`sod-sync: metrics to https://127.0.0.1:`);
			const byOutcome = sumBy(receiver.totals(metricNames.pairs), 'outcome');
			expect(byOutcome).toEqual(Object.fromEntries(Object.entries(reported(run.output())).filter(([, count]) => count > 0)));
			expect(byOutcome.linked).toBe(300);
			expect(sumBy(receiver.totals(metricNames.operations), 'status')).toEqual(Object.fromEntries(Object.entries(simulator.stats.byStatus).map(([status, count]) => [status, count])));
			expect(receiver.metrics.some(metric => metric.name === metricNames.instances)).toBe(true);
			// What the workbook and alerts query (customMetrics): the age's valueCount per message, valueMax in seconds;
			// the queue gauge's value by its `queue` property.
			const ages = receiver.metrics.filter(metric => metric.name === metricNames.messageAge);
			const settledMessages = run.output().split('\n').filter(line => line.startsWith('sod-sync message ')).length;
			expect(ages.reduce((sum, metric) => sum + metric.count!, 0)).toBe(settledMessages);
			expect(Math.max(...ages.map(metric => metric.max!))).toBeGreaterThan(0);
			expect(Math.max(...ages.map(metric => metric.max!))).toBeLessThan(90);
			const lastPending = receiver.metrics.filter(metric => metric.name === metricNames.queueMessages && metric.properties.queue === 'pairs').at(-1);
			expect(lastPending?.value).toBe(0);
		} finally {
			await receiver.close();
		}
	}, 90_000);

	it('with no exporter configured nothing starts, and a protocol it cannot speak is refused by name', async () => {
		expect(telemetryChoice({})).toBeUndefined();
		expect(telemetryChoice({OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/'})).toEqual({kind: 'otlp', url: 'http://127.0.0.1:4318/v1/metrics', protocol: 'http/protobuf', intervalMs: 60_000});
		// Application Insights, with Entra authentication as the template sets it (the identity its ClientId names).
		expect(telemetryChoice({APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=x', APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=1234'})).toEqual({
			kind: 'azure-monitor',
			connectionString: 'InstrumentationKey=x',
			entra: true,
			entraClientId: '1234',
			intervalMs: 60_000,
		});
		expect(telemetryChoice({APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=x'})).toMatchObject({kind: 'azure-monitor', entra: false});
		// Both set: OTLP, the one set on purpose (the template always sets the connection string).
		expect(telemetryChoice({APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c'})?.kind).toBe('otlp');
		expect(telemetryChoice({OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://collector/custom', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json'})).toMatchObject({url: 'http://collector/custom'});
		expect(() => telemetryChoice({OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc'})).toThrow(/'grpc' is not supported/);
		// Credentials written into the URL are never printed.
		const telemetry = await startTelemetry({OTEL_EXPORTER_OTLP_ENDPOINT: 'http://user:secret@127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json'});
		expect(telemetry?.destination).toBe('http://***@127.0.0.1:9/v1/metrics (OTLP http/json)');
		await telemetry?.shutdown().catch(() => undefined);
		const {ids, environment} = await local.startQueues();
		expect((await runInProcess(['enqueue', '-'], environment, csv([[ids[0]!, ids[1]!]]))).code).toBe(0);
		const run = spawnCli(['run', '--until-empty'], environment);
		expect(await run.exited).toBe(0);
		expect(run.output()).not.toContain('metrics to');
	}, 60_000);
});
