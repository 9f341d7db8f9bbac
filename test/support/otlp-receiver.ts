// A local OTLP/HTTP metrics receiver for the tests: accepts `POST /v1/metrics` as JSON or protobuf and keeps every data
// point, decoded by hand (the protobuf wire format of the few OTLP messages metrics use), so that what an exporter
// sent is checked byte for byte by something other than the exporter's own code.

import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';

export interface ReceivedPoint {
	/** The exporting process (`service.instance.id`). */
	instance: string;
	metric: string;
	kind: 'sum' | 'gauge' | 'histogram';
	attributes: Record<string, string | number | boolean>;
	/** A sum's or gauge's value; a histogram's count. */
	value: number;
	/** A histogram's sum, min and max (as sent: cumulative since the process started). */
	histogram?: {sum: number; min: number; max: number};
	timeUnixNano: bigint;
}

export interface OtlpReceiver {
	readonly url: string;
	readonly points: ReceivedPoint[];
	/** Content types of the requests received. */
	readonly contentTypes: string[];
	/**
	 * The latest cumulative value of `metric` per attribute set, summed over the exporting processes: what a backend
	 * shows as the total. Keyed by `JSON.stringify(attributes)` with sorted keys.
	 */
	totals(metric: string): Map<string, number>;
	close(): Promise<void>;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
	const points: ReceivedPoint[] = [];
	const contentTypes: string[] = [];
	const server: Server = createServer((request, response) => {
		const chunks: Buffer[] = [];
		request.on('data', (chunk: Buffer) => chunks.push(chunk));
		request.on('end', () => {
			const body = Buffer.concat(chunks);
			const type = request.headers['content-type'] ?? '';
			contentTypes.push(type);
			try {
				points.push(...(type.includes('json') ? decodeJson(JSON.parse(body.toString('utf8'))) : decodeProtobuf(body)));
				response.writeHead(200, {'content-type': type.includes('json') ? 'application/json' : 'application/x-protobuf'});
				response.end(type.includes('json') ? '{}' : '');
			} catch (error) {
				response.writeHead(400);
				response.end(String(error));
			}
		});
	});
	await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
	const {port} = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		points,
		contentTypes,
		totals(metric) {
			const latest = new Map<string, ReceivedPoint>();
			for (const point of points.filter(item => item.metric === metric)) {
				const key = `${point.instance}\n${attributeKey(point.attributes)}`;
				const seen = latest.get(key);
				if (!seen || point.timeUnixNano >= seen.timeUnixNano) {
					latest.set(key, point);
				}
			}

			const totals = new Map<string, number>();
			for (const point of latest.values()) {
				const key = attributeKey(point.attributes);
				totals.set(key, (totals.get(key) ?? 0) + point.value);
			}

			return totals;
		},
		async close() {
			server.closeAllConnections();
			await new Promise<void>(resolve => server.close(() => resolve()));
		},
	};
}

export function attributeKey(attributes: Record<string, unknown>): string {
	return JSON.stringify(Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b))));
}

// ---- JSON (OTLP/HTTP JSON: proto3 JSON mapping, lowerCamelCase, 64-bit integers as strings) ----

interface JsonAnyValue {
	stringValue?: string;
	intValue?: string | number;
	doubleValue?: number;
	boolValue?: boolean;
}

function jsonAttributes(list: Array<{key: string; value: JsonAnyValue}> | undefined): Record<string, string | number | boolean> {
	return Object.fromEntries(
		(list ?? []).map(({key, value}) => [key, value.stringValue ?? (value.intValue === undefined ? undefined : Number(value.intValue)) ?? value.doubleValue ?? value.boolValue ?? '']),
	) as Record<string, string | number | boolean>;
}

function decodeJson(request: {resourceMetrics?: unknown[]}): ReceivedPoint[] {
	const points: ReceivedPoint[] = [];
	for (const resourceMetrics of (request.resourceMetrics ?? []) as Array<Record<string, any>>) {
		const instance = String(jsonAttributes(resourceMetrics.resource?.attributes)['service.instance.id'] ?? '');
		for (const scope of resourceMetrics.scopeMetrics ?? []) {
			for (const metric of scope.metrics ?? []) {
				if (metric.histogram) {
					for (const point of metric.histogram.dataPoints ?? []) {
						points.push({
							instance,
							metric: metric.name,
							kind: 'histogram',
							attributes: jsonAttributes(point.attributes),
							value: Number(point.count),
							histogram: {sum: Number(point.sum), min: Number(point.min), max: Number(point.max)},
							timeUnixNano: BigInt(point.timeUnixNano ?? 0),
						});
					}

					continue;
				}

				const kind = metric.sum ? 'sum' : metric.gauge ? 'gauge' : undefined;
				if (!kind) {
					continue;
				}

				for (const point of metric[kind].dataPoints ?? []) {
					points.push({
						instance,
						metric: metric.name,
						kind,
						attributes: jsonAttributes(point.attributes),
						value: point.asInt === undefined ? Number(point.asDouble) : Number(point.asInt),
						timeUnixNano: BigInt(point.timeUnixNano ?? 0),
					});
				}
			}
		}
	}

	return points;
}

// ---- protobuf (opentelemetry/proto/collector/metrics/v1 ExportMetricsServiceRequest) ----

type Field = {number: number; wire: 0; value: bigint} | {number: number; wire: 1; value: Buffer} | {number: number; wire: 2; value: Buffer} | {number: number; wire: 5; value: Buffer};

function readVarint(buffer: Buffer, offset: number): [bigint, number] {
	let result = 0n;
	let shift = 0n;
	for (;;) {
		const byte = buffer[offset++];
		if (byte === undefined) {
			throw new Error('truncated varint');
		}

		result |= BigInt(byte & 0x7f) << shift;
		if ((byte & 0x80) === 0) {
			return [result, offset];
		}

		shift += 7n;
	}
}

function fields(buffer: Buffer): Field[] {
	const list: Field[] = [];
	let offset = 0;
	while (offset < buffer.length) {
		const [tag, next] = readVarint(buffer, offset);
		offset = next;
		const number = Number(tag >> 3n);
		const wire = Number(tag & 7n);
		if (wire === 0) {
			const [value, after] = readVarint(buffer, offset);
			list.push({number, wire, value});
			offset = after;
		} else if (wire === 1) {
			list.push({number, wire, value: buffer.subarray(offset, offset + 8)});
			offset += 8;
		} else if (wire === 2) {
			const [length, after] = readVarint(buffer, offset);
			list.push({number, wire, value: buffer.subarray(after, after + Number(length))});
			offset = after + Number(length);
		} else if (wire === 5) {
			list.push({number, wire, value: buffer.subarray(offset, offset + 4)});
			offset += 4;
		} else {
			throw new Error(`wire type ${wire} not expected in OTLP metrics`);
		}
	}

	return list;
}

const bytesOf = (list: Field[], number: number) => list.filter(field => field.number === number && field.wire === 2).map(field => field.value as Buffer);

function anyValue(buffer: Buffer): string | number | boolean {
	const [field] = fields(buffer);
	if (!field) {
		return '';
	}

	switch (field.number) {
		case 1: {
			return (field.value as Buffer).toString('utf8');
		}

		case 2: {
			return (field.value as bigint) !== 0n;
		}

		case 3: {
			return Number(BigInt.asIntN(64, field.value as bigint));
		}

		case 4: {
			return (field.value as Buffer).readDoubleLE(0);
		}

		default: {
			return '';
		}
	}
}

function keyValues(list: Buffer[]): Record<string, string | number | boolean> {
	return Object.fromEntries(
		list.map(buffer => {
			const parts = fields(buffer);
			return [bytesOf(parts, 1)[0]?.toString('utf8') ?? '', anyValue(bytesOf(parts, 2)[0] ?? Buffer.alloc(0))];
		}),
	);
}

function decodeProtobuf(body: Buffer): ReceivedPoint[] {
	const points: ReceivedPoint[] = [];
	for (const resourceMetrics of bytesOf(fields(body), 1)) {
		const parts = fields(resourceMetrics);
		const resource = bytesOf(parts, 1)[0];
		const instance = String(keyValues(resource ? bytesOf(fields(resource), 1) : [])['service.instance.id'] ?? '');
		for (const scopeMetrics of bytesOf(parts, 2)) {
			for (const metric of bytesOf(fields(scopeMetrics), 2)) {
				const metricFields = fields(metric);
				const name = bytesOf(metricFields, 1)[0]?.toString('utf8') ?? '';
				// Metric: gauge = 5, sum = 7; each holds repeated NumberDataPoint data_points = 1.
				for (const [number, kind] of [
					[5, 'gauge'],
					[7, 'sum'],
				] as const) {
					for (const data of bytesOf(metricFields, number)) {
						for (const point of bytesOf(fields(data), 1)) {
							const pointFields = fields(point);
							// NumberDataPoint: attributes = 7, time_unix_nano = 3 (fixed64), as_double = 4, as_int = 6 (sfixed64).
							const time = pointFields.find(field => field.number === 3 && field.wire === 1)?.value as Buffer | undefined;
							const asDouble = pointFields.find(field => field.number === 4 && field.wire === 1)?.value as Buffer | undefined;
							const asInt = pointFields.find(field => field.number === 6 && field.wire === 1)?.value as Buffer | undefined;
							points.push({
								instance,
								metric: name,
								kind,
								attributes: keyValues(bytesOf(pointFields, 7)),
								value: asInt ? Number(asInt.readBigInt64LE(0)) : asDouble ? asDouble.readDoubleLE(0) : 0,
								timeUnixNano: time ? time.readBigUInt64LE(0) : 0n,
							});
						}
					}
				}

				// Metric: histogram = 9, repeated HistogramDataPoint data_points = 1: attributes = 9, time_unix_nano = 3,
				// count = 4 (fixed64), sum = 5, min = 11, max = 12 (doubles).
				for (const data of bytesOf(metricFields, 9)) {
					for (const point of bytesOf(fields(data), 1)) {
						const pointFields = fields(point);
						const fixed = (number: number) => pointFields.find(field => field.number === number && field.wire === 1)?.value as Buffer | undefined;
						points.push({
							instance,
							metric: name,
							kind: 'histogram',
							attributes: keyValues(bytesOf(pointFields, 9)),
							value: Number(fixed(4)?.readBigUInt64LE(0) ?? 0n),
							histogram: {sum: fixed(5)?.readDoubleLE(0) ?? Number.NaN, min: fixed(11)?.readDoubleLE(0) ?? Number.NaN, max: fixed(12)?.readDoubleLE(0) ?? Number.NaN},
							timeUnixNano: fixed(3)?.readBigUInt64LE(0) ?? 0n,
						});
					}
				}
			}
		}
	}

	return points;
}
