// Starts the OpenTelemetry metrics pipeline the standard environment variables ask for, and nothing otherwise:
// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) exports to any OTLP collector over HTTP,
// as `OTEL_EXPORTER_OTLP_PROTOCOL` says (`http/protobuf`, the default, or `http/json`). The SDK and the exporter are
// loaded only then: a process that exports nothing pays nothing at start.

import {randomUUID} from 'node:crypto';
import {metrics} from '@opentelemetry/api';
import type {Environment} from '../config/settings.js';

export interface Telemetry {
	/** Where the metrics go, for the start-up line. */
	readonly destination: string;
	/** Exports what was recorded so far. */
	flush(): Promise<void>;
	/** Exports what is left and stops (a CLI command, before it exits). */
	shutdown(): Promise<void>;
}

export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** What the environment asks for: an OTLP endpoint (URL of the metrics path) and protocol; undefined for nothing. */
export function telemetryChoice(environment: Environment): {url: string; protocol: OtlpProtocol; intervalMs: number} | undefined {
	const metricsEndpoint = environment.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?.trim();
	const endpoint = environment.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
	if (!metricsEndpoint && !endpoint) {
		return undefined;
	}

	// The spec: the signal-specific variable is the URL as given; the general one gets /v1/metrics appended.
	const url = metricsEndpoint || `${endpoint!.replace(/\/+$/, '')}/v1/metrics`;
	const protocol = (environment.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL || environment.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
	if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
		throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL: '${protocol}' is not supported (http/protobuf or http/json; grpc is not built in)`);
	}

	const interval = Number(environment.OTEL_METRIC_EXPORT_INTERVAL ?? 60_000);
	return {url, protocol, intervalMs: Number.isFinite(interval) && interval >= 100 ? interval : 60_000};
}

/**
 * Starts exporting when the environment asks for it, as the process's global MeterProvider (SodMetrics records into
 * it); undefined when it does not.
 *
 * @example
 * const telemetry = await startTelemetry(process.env);
 * await telemetry?.shutdown();
 */
export async function startTelemetry(environment: Environment): Promise<Telemetry | undefined> {
	const choice = telemetryChoice(environment);
	if (!choice) {
		return undefined;
	}

	const [{MeterProvider, PeriodicExportingMetricReader}, {resourceFromAttributes}] = await Promise.all([import('@opentelemetry/sdk-metrics'), import('@opentelemetry/resources')]);
	const exporter =
		choice.protocol === 'http/json'
			? new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter({url: choice.url})
			: new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter({url: choice.url});
	const provider = new MeterProvider({
		resource: resourceFromAttributes({
			'service.name': environment.OTEL_SERVICE_NAME?.trim() || 'sod-sync',
			// Each process its own series: cumulative counters from several instances add up at the backend.
			'service.instance.id': randomUUID(),
		}),
		readers: [new PeriodicExportingMetricReader({exporter, exportIntervalMillis: choice.intervalMs})],
	});
	metrics.setGlobalMeterProvider(provider);
	return {
		// Credentials written into the URL's user-info part are not printed.
		destination: `${choice.url.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@')} (OTLP ${choice.protocol})`,
		flush: async () => provider.forceFlush(),
		shutdown: async () => {
			await provider.shutdown();
			metrics.disable();
		},
	};
}
