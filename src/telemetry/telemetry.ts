// Starts the OpenTelemetry metrics pipeline the standard environment variables ask for, and nothing otherwise:
// `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) exports to any OTLP collector over HTTP,
// as `OTEL_EXPORTER_OTLP_PROTOCOL` says (`http/protobuf`, the default, or `http/json`); else
// `APPLICATIONINSIGHTS_CONNECTION_STRING` exports to Application Insights (Microsoft's exporter), with Entra
// authentication when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` says `Authorization=AAD` (the managed identity its
// `ClientId` names). The SDK and the exporter are loaded only then: a process that exports nothing pays nothing at start.

import {randomUUID} from 'node:crypto';
import {ManagedIdentityCredential} from '@azure/identity';
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

export type TelemetryChoice =
	| {kind: 'otlp'; url: string; protocol: OtlpProtocol; intervalMs: number}
	| {kind: 'azure-monitor'; connectionString: string; entraClientId: string | undefined; entra: boolean; intervalMs: number};

/** What the environment asks for; undefined for nothing. OTLP wins when both are set (it is the one set on purpose). */
export function telemetryChoice(environment: Environment): TelemetryChoice | undefined {
	const interval = Number(environment.OTEL_METRIC_EXPORT_INTERVAL ?? 60_000);
	const intervalMs = Number.isFinite(interval) && interval >= 100 ? interval : 60_000;
	const metricsEndpoint = environment.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT?.trim();
	const endpoint = environment.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
	if (metricsEndpoint || endpoint) {
		// The spec: the signal-specific variable is the URL as given; the general one gets /v1/metrics appended.
		const url = metricsEndpoint || `${endpoint!.replace(/\/+$/, '')}/v1/metrics`;
		const protocol = (environment.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL || environment.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
		if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
			throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL: '${protocol}' is not supported (http/protobuf or http/json; grpc is not built in)`);
		}

		return {kind: 'otlp', url, protocol, intervalMs};
	}

	const connectionString = environment.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
	if (connectionString) {
		// `Authorization=AAD;ClientId=<user-assigned identity's client id>` (no ClientId: the system-assigned identity).
		const authentication = environment.APPLICATIONINSIGHTS_AUTHENTICATION_STRING?.trim() ?? '';
		const entra = /(?:^|;)\s*Authorization\s*=\s*AAD\s*(?:;|$)/i.test(authentication);
		const entraClientId = /(?:^|;)\s*ClientId\s*=\s*([^;\s]+)/i.exec(authentication)?.[1];
		return {kind: 'azure-monitor', connectionString, entra, entraClientId, intervalMs};
	}

	return undefined;
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
	let exporter;
	let destination: string;
	if (choice.kind === 'otlp') {
		exporter =
			choice.protocol === 'http/json'
				? new (await import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter({url: choice.url})
				: new (await import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter({url: choice.url});
		// Credentials written into the URL's user-info part are not printed.
		destination = `${choice.url.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@')} (OTLP ${choice.protocol})`;
	} else {
		const {AzureMonitorMetricExporter} = await import('@azure/monitor-opentelemetry-exporter');
		const credential = choice.entra ? new ManagedIdentityCredential(choice.entraClientId ? {clientId: choice.entraClientId} : {}) : undefined;
		// No files on disk: an export that fails is retried by the next one's cumulative state, not from a local spool.
		exporter = new AzureMonitorMetricExporter({connectionString: choice.connectionString, credential, disableOfflineStorage: true});
		const ingestion = /(?:^|;)\s*IngestionEndpoint\s*=\s*([^;\s]+)/i.exec(choice.connectionString)?.[1] ?? 'the default ingestion endpoint';
		destination = `${ingestion} (Application Insights${choice.entra ? ', Entra authentication' : ''})`;
	}

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
		destination,
		flush: async () => provider.forceFlush(),
		shutdown: async () => {
			await provider.shutdown();
			metrics.disable();
		},
	};
}
