// Builds the worker as the Function does, against a simulator and Azurite, with retries fast enough for tests.

import functions from '@azure/functions';
import {LinkEngine} from '../../src/engine/link-engine.js';
import {createGraphClient, staticTokenSource} from '../../src/graph/graph-client.js';
import {GraphLinkGateway, type LinkGateway} from '../../src/graph/link-gateway.js';
import {queueHostConfigFrom} from '../../src/config/host-config.js';
import {readSettings, type Settings} from '../../src/config/settings.js';
import type {GraphSimulator} from '../../src/simulator/graph-simulator.js';
import {handlePairsMessage, type WorkerDependencies} from '../../src/worker/pairs-handler.js';
import {createLinkEngine, createWorkerDependencies, retryPolicyFrom} from '../../src/worker/worker-runtime.js';
import {queueService, uniqueQueueName} from './queues.js';
import {openAppStorage} from '../../src/queue/app-storage.js';

export interface TestWorker {
	settings: Settings;
	dependencies: WorkerDependencies;
	logs: string[];
	/** Invokes the handler as the host would, with a real InvocationContext. */
	invoke(item: unknown, messageId?: string): ReturnType<typeof handlePairsMessage>;
	pairsQueue: ReturnType<ReturnType<typeof queueService>['getQueueClient']>;
	/** Every message the worker put back on the pairs queue, with its visibility delay (re-queues are often not visible yet). */
	requeued: Array<{text: string; visibilityTimeoutSeconds: number | undefined}>;
	deadLetterQueue: ReturnType<ReturnType<typeof queueService>['getQueueClient']>;
}

export function createTestWorker(
	simulator: GraphSimulator,
	connectionString: string,
	options: {
		token?: string;
		maxConcurrency?: number;
		batchSize?: number;
		invocationBudgetMs?: number;
		maxAttempts?: number;
		maxPairAgeMs?: number;
		/** Records settled messages in the import ledger (Azurite's table), as a deployment does. Defaults to true. */
		ledger?: boolean;
		/** Wraps the gateway the engine talks to Graph through (to plant a defect, say). */
		gateway?: (real: LinkGateway) => LinkGateway;
	} = {},
): TestWorker {
	const settings = readSettings({
		AzureWebJobsStorage: connectionString,
		SOD_QUEUE: uniqueQueueName('pairs'),
		SOD_DEAD_LETTER_QUEUE: uniqueQueueName('dead'),
		GRAPH_BASE_URL: simulator.baseUrl,
		GRAPH_ACCESS_TOKEN: options.token ?? simulator.token,
		GRAPH_MAX_CONCURRENCY: String(options.maxConcurrency ?? 4),
		SOD_RETRY_BASE_MS: '10',
		GRAPH_BATCH_SIZE: String(options.batchSize ?? 20),
	});
	const tokenSource = staticTokenSource(settings.graphAccessToken!);
	const engine = options.gateway
		? new LinkEngine({
				gateway: options.gateway(
					new GraphLinkGateway(createGraphClient({graphBaseUrl: settings.graphBaseUrl, apiVersion: settings.graphApiVersion, tokenSource}), {
						graphBaseUrl: settings.graphBaseUrl,
						apiVersion: settings.graphApiVersion,
					}),
				),
				maxConcurrency: settings.graphMaxConcurrency,
				batchSize: settings.graphBatchSize,
				retryPolicy: retryPolicyFrom(settings),
			})
		: createLinkEngine(settings, tokenSource);
	const dependencies = createWorkerDependencies(settings, openAppStorage(settings, queueHostConfigFrom({})), {}, {
		engine,
		invocationBudgetMs: options.invocationBudgetMs ?? 20_000,
		maxAttempts: options.maxAttempts ?? 5,
		...(options.maxPairAgeMs === undefined ? {} : {maxPairAgeMs: options.maxPairAgeMs}),
		...(options.ledger === false ? {ledger: undefined} : {}),
	});
	const requeued: TestWorker['requeued'] = [];
	const pairsSink = dependencies.pairsQueue;
	dependencies.pairsQueue = {
		async send(text, sendOptions) {
			requeued.push({text, visibilityTimeoutSeconds: sendOptions?.visibilityTimeoutSeconds});
			await pairsSink.send(text, sendOptions);
		},
	};
	const logs: string[] = [];
	let invocations = 0;
	const service = queueService(connectionString);
	return {
		settings,
		dependencies,
		logs,
		requeued,
		pairsQueue: service.getQueueClient(settings.queueName),
		deadLetterQueue: service.getQueueClient(settings.deadLetterQueueName),
		async invoke(item, messageId) {
			invocations++;
			const context = new functions.InvocationContext({
				invocationId: `test-${invocations}`,
				functionName: 'syncPairs',
				triggerMetadata: {id: messageId ?? `message-${invocations}`, dequeueCount: 1},
				logHandler: (level, ...args) => logs.push(`${level}: ${args.map(String).join(' ')}`),
			});
			return handlePairsMessage(item, context, dependencies);
		},
	};
}
