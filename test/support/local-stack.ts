// One Azurite per test file, one simulator per test: hooks that start them and stop them (and any CLI child left).

import {afterAll, afterEach, beforeAll} from 'vitest';
import {startAzurite, type RunningAzurite} from '../../src/local/azurite.js';
import {GraphSimulator, type SimulatorOptions} from '../../src/simulator/graph-simulator.js';
import {killChildren} from './cli.js';
import type {QueueClient} from '@azure/storage-queue';
import {queueService, uniqueQueueName} from './queues.js';

export interface LocalStack {
	/** Azurite, started before the file's first test. */
	readonly azurite: RunningAzurite;
	/** Starts this test's simulator; it is closed after the test. */
	startSimulator(options: SimulatorOptions): Promise<GraphSimulator>;
	/** A simulator (30 packages unless told), the CLI environment for it, and the queues that environment names. */
	startQueues(options?: SimulatorOptions): Promise<{
		simulator: GraphSimulator;
		ids: string[];
		environment: ReturnType<LocalStack['environment']>;
		pairsQueue: QueueClient;
		poisonQueue: QueueClient;
		deadLetterQueue: QueueClient;
	}>;
	/** Settings for the CLI against Azurite and `simulator`, on queues of their own, with quick retries. */
	environment(simulator: GraphSimulator): {
		AzureWebJobsStorage: string;
		SOD_QUEUE: string;
		SOD_DEAD_LETTER_QUEUE: string;
		GRAPH_BASE_URL: string;
		GRAPH_ACCESS_TOKEN: string;
		SOD_RETRY_BASE_MS: string;
	};
}

export function useLocalStack(options: {blob?: boolean} = {blob: true}): LocalStack {
	let azurite: RunningAzurite | undefined;
	let simulator: GraphSimulator | undefined;
	beforeAll(async () => {
		azurite = await startAzurite({blob: options.blob, table: options.blob});
	});

	afterAll(async () => {
		await azurite?.stop();
	});

	afterEach(async () => {
		killChildren();
		await simulator?.close();
		simulator = undefined;
	});

	return {
		get azurite() {
			return azurite!;
		},
		async startSimulator(simulatorOptions) {
			simulator = await GraphSimulator.start(simulatorOptions);
			return simulator;
		},
		async startQueues(simulatorOptions = {}) {
			const started = await this.startSimulator({packageCount: 30, ...simulatorOptions});
			const environment = this.environment(started);
			const service = queueService(azurite!.connectionString);
			return {
				simulator: started,
				ids: started.packageIds,
				environment,
				pairsQueue: service.getQueueClient(environment.SOD_QUEUE),
				poisonQueue: service.getQueueClient(`${environment.SOD_QUEUE}-poison`),
				deadLetterQueue: service.getQueueClient(environment.SOD_DEAD_LETTER_QUEUE),
			};
		},
		environment(graph) {
			return {
				AzureWebJobsStorage: azurite!.connectionString,
				SOD_QUEUE: uniqueQueueName('pairs'),
				SOD_DEAD_LETTER_QUEUE: uniqueQueueName('dead'),
				GRAPH_BASE_URL: graph.baseUrl,
				GRAPH_ACCESS_TOKEN: graph.token,
				SOD_RETRY_BASE_MS: '20',
			};
		},
	};
}
