// Azure Storage queues as sod-sync uses them: clients from the settings, and messages encoded the way host.json says,
// so that every queue the app writes can trigger a Function or be read by Azure's own tools.

import {Buffer} from 'node:buffer';
import {QueueServiceClient, type QueueClient} from '@azure/storage-queue';
import type {MessageEncoding} from '../message/message.js';
import {SettingsError, type StorageConnection} from '../config/settings.js';
import {storageCredential} from '../storage/storage-credential.js';

/**
 * Storage calls retry 3 times, 0.8 s doubling (the SDK's default waits 4 s doubling: half a minute before a wrong
 * endpoint is reported).
 */
const retryOptions = {maxTries: 4, retryDelayInMs: 800, maxRetryDelayInMs: 10_000, tryTimeoutInMs: 30_000};

export function createQueueServiceClient(storage: StorageConnection): QueueServiceClient {
	if (storage.kind === 'connection-string') {
		return QueueServiceClient.fromConnectionString(storage.connectionString, {retryOptions});
	}

	return new QueueServiceClient(storage.queueServiceUri, storageCredential(storage), {retryOptions});
}

/** Creates the queue if needed; a failure names the setting to check and the endpoint that did not answer. */
export async function ensureQueue(queue: QueueClient): Promise<void> {
	try {
		await queue.createIfNotExists();
	} catch (error) {
		const origin = new URL(queue.url).origin;
		const {statusCode, code, message} = error as {statusCode?: number; code?: string; message?: string};
		throw new SettingsError(
			`AzureWebJobsStorage: the queue service at ${origin} did not accept us (${[statusCode, code].filter(Boolean).join(' ') || 'no answer'}: ${(message ?? String(error)).split('\n')[0]}); check the connection string or the identity's Storage Queue Data Contributor role`,
		);
	}
}

export function encodeMessage(text: string, encoding: MessageEncoding): string {
	return encoding === 'base64' ? Buffer.from(text, 'utf8').toString('base64') : text;
}

/** The message's text, or `undefined` when a base64 queue holds something that is not base64 (the host poisons it). */
export function decodeMessage(messageText: string, encoding: MessageEncoding): string | undefined {
	if (encoding === 'none') {
		return messageText;
	}

	const compact = messageText.replace(/\s+/g, '');
	if (compact.length % 4 !== 0 || !/^[A-Za-z\d+/]*={0,2}$/.test(compact)) {
		return undefined;
	}

	return Buffer.from(compact, 'base64').toString('utf8');
}

/** Anything that takes text messages: a queue, or a test's stand-in. */
export interface MessageSink {
	send(text: string, options?: SendOptions): Promise<void>;
}

export interface SendOptions {
	/** Seconds before the message becomes visible; at most 7 days. */
	visibilityTimeoutSeconds?: number;
}

/** Writes text messages to one queue, creating the queue on first use. */
export class QueueSender implements MessageSink {
	readonly #client: QueueClient;
	readonly #encoding: MessageEncoding;
	#ready: Promise<unknown> | undefined;

	constructor(client: QueueClient, encoding: MessageEncoding) {
		this.#client = client;
		this.#encoding = encoding;
	}

	get name(): string {
		return this.#client.name;
	}

	async send(text: string, options: SendOptions = {}): Promise<void> {
		this.#ready ??= ensureQueue(this.#client).catch((error: unknown) => {
			this.#ready = undefined;
			throw error;
		});
		await this.#ready;
		const visibilityTimeout = Math.min(Math.max(0, Math.ceil(options.visibilityTimeoutSeconds ?? 0)), maximumVisibilitySeconds);
		// Never expire: a pair or a dead letter that ages out after the default 7 days would be lost without a trace.
		await this.#client.sendMessage(encodeMessage(text, this.#encoding), {
			messageTimeToLive: -1,
			...(visibilityTimeout > 0 ? {visibilityTimeout} : {}),
		});
	}
}

/** Storage queues hide a message for at most 7 days. */
export const maximumVisibilitySeconds = 7 * 24 * 60 * 60;
