// The app's storage, opened once from its settings: the queues it reads and writes (encoded as host.json says) and
// the blob containers it keeps state in. Every entry point (the Functions, each CLI command, the tests) opens it here.

import type {QueueClient, QueueServiceClient} from '@azure/storage-queue';
import {readQueueHostConfig, type QueueHostConfig} from '../config/host-config.js';
import type {MessageEncoding} from '../message/message.js';
import {createQueueServiceClient, QueueSender} from './storage-queue.js';
import type {Settings} from '../config/settings.js';

export interface AppStorage {
	/** host.json's `extensions.queues`, whose `messageEncoding` every queue the app writes follows. */
	readonly hostConfig: QueueHostConfig;
	readonly encoding: MessageEncoding;
	readonly queues: QueueServiceClient;
	/** `SOD_QUEUE`, to write to. */
	readonly pairs: QueueSender;
	/** `SOD_DEAD_LETTER_QUEUE`, to write to. */
	readonly deadLetters: QueueSender;
	/** A queue's client, to read or manage (`SOD_QUEUE`, its `-poison` queue, the dead-letter queue). */
	queue(name: string): QueueClient;
}

/**
 * @example
 * const storage = openAppStorage(settings);
 * await storage.pairs.send(text);
 */
export function openAppStorage(settings: Settings, hostConfig: QueueHostConfig = readQueueHostConfig()): AppStorage {
	const queues = createQueueServiceClient(settings.storage);
	const encoding = hostConfig.messageEncoding;
	return {
		hostConfig,
		encoding,
		queues,
		pairs: new QueueSender(queues.getQueueClient(settings.queueName), encoding),
		deadLetters: new QueueSender(queues.getQueueClient(settings.deadLetterQueueName), encoding),
		queue: name => queues.getQueueClient(name),
	};
}

/** The queues the app's metrics follow (`sod_sync.queue.messages`), by role. */
export function appQueues(storage: AppStorage, settings: Pick<Settings, 'queueName' | 'deadLetterQueueName'>): {pairs: QueueClient; 'dead-letter': QueueClient} {
	return {pairs: storage.queue(settings.queueName), 'dead-letter': storage.queue(settings.deadLetterQueueName)};
}

/** A correlation id for a run that was not given one: `<kind>-<UTC time to the second>[-<suffix>]`. */
export function generatedCorrelationId(kind: string, at = new Date(), suffix?: string): string {
	const stamp = at.toISOString().replaceAll(/[-:]|\.\d+/g, '');
	return suffix ? `${kind}-${stamp}-${suffix}` : `${kind}-${stamp}`;
}
