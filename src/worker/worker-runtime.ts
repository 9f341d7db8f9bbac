// Wires the worker from settings, once per process: the engine (and so its concurrency bound and throttle gate) is
// shared by every invocation the process runs at once.

import {DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential} from '@azure/identity';
import {LinkEngine, type LinkEngineOptions} from '../engine/link-engine.js';
import {retryPolicyFor, type RetryPolicy} from '../engine/retry-decision.js';
import {createGraphClient, credentialTokenSource, staticTokenSource, type TokenSource} from '../graph/graph-client.js';
import {GraphLinkGateway} from '../graph/link-gateway.js';
import type {Environment, Settings} from '../config/settings.js';
import type {ThrottleStore} from '../engine/shared-throttle.js';
import {createBlobServiceClient, throttleStateRetryOptions} from '../storage/blob-service.js';
import {BlobThrottleStore} from '../storage/blob-throttle-store.js';
import {BlobRawMessageStore, type RawMessageStore} from '../storage/raw-message-store.js';
import type {WorkerDependencies} from './pairs-handler.js';
import type {AppStorage} from '../queue/app-storage.js';
import {describeEngineEvent, loggedEngineEvents} from './engine-log.js';
import {openLedgerStore} from '../ledger/open-ledger.js';
import {WorkerLedger} from '../ledger/worker-ledger.js';

export type CredentialChoice = 'static-token' | 'managed-identity' | 'default';

/**
 * `GRAPH_ACCESS_TOKEN` wins (simulator, tests). In Azure, App Service and Functions set `IDENTITY_ENDPOINT` when a managed
 * identity is assigned; `AZURE_CLIENT_ID` alone (no secret, certificate or federated token beside it) names a
 * user-assigned identity. Anything else gets `DefaultAzureCredential` (Azure CLI, VS Code, environment credentials).
 */
export function chooseCredential(environment: Environment, settings: Pick<Settings, 'graphAccessToken'>): CredentialChoice {
	if (settings.graphAccessToken) {
		return 'static-token';
	}

	const hasServicePrincipal = Boolean(
		environment.AZURE_CLIENT_SECRET || environment.AZURE_CLIENT_CERTIFICATE_PATH || environment.AZURE_FEDERATED_TOKEN_FILE,
	);
	if (environment.IDENTITY_ENDPOINT || environment.MSI_ENDPOINT || (environment.AZURE_CLIENT_ID && !hasServicePrincipal)) {
		return 'managed-identity';
	}

	return 'default';
}

export function createTokenSource(environment: Environment, settings: Settings): TokenSource {
	const choice = chooseCredential(environment, settings);
	if (choice === 'static-token') {
		return staticTokenSource(settings.graphAccessToken!);
	}

	const credential: TokenCredential =
		choice === 'managed-identity'
			? new ManagedIdentityCredential(environment.AZURE_CLIENT_ID ? {clientId: environment.AZURE_CLIENT_ID} : {})
			: new DefaultAzureCredential();
	return credentialTokenSource(credential, settings.graphBaseUrl);
}

export function createLinkEngine(
	settings: Settings,
	tokenSource: TokenSource,
	options: Omit<LinkEngineOptions, 'gateway'> = {},
): LinkEngine {
	// Graph's early warnings (on direct answers through the client, on `$batch` items through the gateway) ease the pace.
	let engine: LinkEngine | undefined;
	const onLimitWarning = (used: number) => engine?.recordLimitWarning(used);
	const client = createGraphClient({graphBaseUrl: settings.graphBaseUrl, apiVersion: settings.graphApiVersion, tokenSource, onLimitWarning});
	const gateway = new GraphLinkGateway(client, {graphBaseUrl: settings.graphBaseUrl, apiVersion: settings.graphApiVersion, onLimitWarning});
	engine = new LinkEngine({
		gateway,
		maxConcurrency: settings.graphMaxConcurrency,
		batchSize: settings.graphBatchSize,
		requestTimeoutMs: settings.graphRequestTimeoutMs,
		retryPolicy: retryPolicyFrom(settings),
		...options,
	});
	return engine;
}

export function retryPolicyFrom(settings: Pick<Settings, 'retryBaseMs' | 'notFoundRetries'>): RetryPolicy {
	return retryPolicyFor(settings.retryBaseMs, settings.notFoundRetries);
}

let processEngine: LinkEngine | undefined;

/**
 * The process's one engine, built on first use: the Functions in a process (the queue worker and the scheduled
 * reconcile) share its concurrency bound and throttle gate, as Graph's throttling is per app, not per function.
 */
export function sharedLinkEngine(settings: Settings, environment: Environment, log: (line: string) => void = line => console.info(line)): LinkEngine {
	if (!processEngine) {
		processEngine = createLinkEngine(settings, createTokenSource(environment, settings), {throttleStore: throttleStoreFor(settings)});
		// Throttling and pacing, one line each, in the process's log (under Functions: Application Insights traces).
		processEngine.events.on(event => {
			const line = describeEngineEvent(event);
			if (line !== undefined) {
				log(line);
			}
		}, loggedEngineEvents);
	}

	return processEngine;
}

/**
 * The throttle state shared with every instance on the same queue: a blob named after the queue, in
 * `SOD_THROTTLE_STATE_CONTAINER` of the app's storage account. Undefined when sharing is off. A connection that names
 * no blob endpoint cannot share: one warning, and the process paces on its own.
 */
export function throttleStoreFor(settings: Settings, onWarning: (message: string) => void = message => console.warn(message)): ThrottleStore | undefined {
	if (!settings.throttleStateContainer) {
		return undefined;
	}

	try {
		const container = createBlobServiceClient(settings.storage, throttleStateRetryOptions).getContainerClient(settings.throttleStateContainer);
		return new BlobThrottleStore(container, `${settings.queueName}.json`);
	} catch (error) {
		onWarning(`sod-sync: the shared throttle state is off (${(error as Error).message}); this instance paces on its own.`);
		return undefined;
	}
}

/** The blob container for raw messages too large for their dead-letter record; undefined without blob storage. */
export function rawMessageStoreFor(settings: Settings): RawMessageStore | undefined {
	try {
		return new BlobRawMessageStore(createBlobServiceClient(settings.storage).getContainerClient(settings.deadLetterContainer));
	} catch {
		return undefined;
	}
}

/**
 * The worker's import ledger, or undefined when it is off: `SOD_LEDGER_RETENTION_DAYS=0`, or a connection with no table
 * endpoint (one warning). Writes that fail later are the WorkerLedger's to handle.
 */
export function workerLedgerFor(settings: Settings, warn: (message: string) => void = message => console.warn(message)): WorkerLedger | undefined {
	const store = openLedgerStore(settings, warn);
	return store && new WorkerLedger(store, {warn});
}

/** The handler's dependencies on the app's storage (see `openAppStorage`), opened once by the caller. */
export function createWorkerDependencies(
	settings: Settings,
	storage: AppStorage,
	environment: Environment,
	overrides: Partial<WorkerDependencies> = {},
	engineLog?: (line: string) => void,
): WorkerDependencies {
	return {
		engine: overrides.engine ?? sharedLinkEngine(settings, environment, engineLog),
		pairsQueue: storage.pairs,
		deadLetterQueue: storage.deadLetters,
		encoding: storage.encoding,
		invocationBudgetMs: settings.invocationBudgetMs,
		maxAttempts: settings.maxAttempts,
		maxPairAgeMs: settings.maxPairAgeMs,
		rawMessages: rawMessageStoreFor(settings),
		...overrides,
		ledger: 'ledger' in overrides ? overrides.ledger : workerLedgerFor(settings),
	};
}
