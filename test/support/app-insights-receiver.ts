// A local Application Insights ingestion endpoint for the tests: `POST /v2.1/track` over https (the exporter sends
// nowhere else), keeping every metric envelope. Its certificate is test/support/tls's; a process that exports here
// needs NODE_EXTRA_CA_CERTS=`certificatePath`.

import {readFileSync} from 'node:fs';
import {createServer, type Server} from 'node:https';
import type {AddressInfo} from 'node:net';
import {fileURLToPath} from 'node:url';
import {gunzipSync} from 'node:zlib';

export const certificatePath = fileURLToPath(new URL('tls/loopback-test-only.cert.pem', import.meta.url));
const keyPath = fileURLToPath(new URL('tls/loopback-test-only.key.pem', import.meta.url));

export interface ReceivedMetric {
	name: string;
	/** A counter's delta, a gauge's value, or a histogram's sum (customMetrics' value / valueSum). */
	value: number;
	/** Values aggregated into this one (customMetrics' valueCount), and a histogram's extremes (valueMin, valueMax). */
	count?: number;
	min?: number;
	max?: number;
	properties: Record<string, string>;
	roleInstance: string;
}

export interface AppInsightsReceiver {
	/** A connection string that sends here. */
	readonly connectionString: string;
	readonly metrics: ReceivedMetric[];
	/** Sums per `JSON.stringify(properties)` with sorted keys: the exporter sends deltas. */
	totals(name: string): Map<string, number>;
	close(): Promise<void>;
}

export async function startAppInsightsReceiver(): Promise<AppInsightsReceiver> {
	const metrics: ReceivedMetric[] = [];
	const server: Server = createServer({key: readFileSync(keyPath), cert: readFileSync(certificatePath)}, (request, response) => {
		const chunks: Buffer[] = [];
		request.on('data', (chunk: Buffer) => chunks.push(chunk));
		request.on('end', () => {
			let body = Buffer.concat(chunks);
			if (request.headers['content-encoding'] === 'gzip') {
				body = gunzipSync(body);
			}

			const envelopes = JSON.parse(body.toString('utf8')) as Array<{
				name: string;
				tags?: Record<string, string>;
				data?: {baseType?: string; baseData?: {metrics?: Array<{name: string; value: number; count?: number; min?: number; max?: number}>; properties?: Record<string, string>}};
			}>;
			for (const envelope of envelopes) {
				if (envelope.data?.baseType !== 'MetricData') {
					continue;
				}

				for (const metric of envelope.data.baseData?.metrics ?? []) {
					metrics.push({name: metric.name, value: metric.value, count: metric.count, min: metric.min, max: metric.max, properties: envelope.data.baseData?.properties ?? {}, roleInstance: envelope.tags?.['ai.cloud.roleInstance'] ?? ''});
				}
			}

			response.writeHead(200, {'content-type': 'application/json'});
			response.end(JSON.stringify({itemsReceived: envelopes.length, itemsAccepted: envelopes.length, errors: []}));
		});
	});
	await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
	const {port} = server.address() as AddressInfo;
	return {
		connectionString: `InstrumentationKey=00000000-0000-4000-8000-000000000001;IngestionEndpoint=https://127.0.0.1:${port}/`,
		metrics,
		totals(name) {
			const totals = new Map<string, number>();
			for (const metric of metrics.filter(item => item.name === name)) {
				const key = JSON.stringify(Object.fromEntries(Object.entries(metric.properties).sort(([a], [b]) => a.localeCompare(b))));
				totals.set(key, (totals.get(key) ?? 0) + metric.value);
			}

			return totals;
		},
		async close() {
			server.closeAllConnections();
			await new Promise<void>(resolve => server.close(() => resolve()));
		},
	};
}
