import {QueueServiceClient, type QueueClient} from '@azure/storage-queue';
import {decodeMessage} from '../../src/queue/storage-queue.js';

/** Takes every visible message off a queue (base64 decoded), leaving it empty. */
export async function drainQueue(queue: QueueClient): Promise<string[]> {
	const texts: string[] = [];
	if (!(await queue.exists())) {
		return texts;
	}

	for (;;) {
		// eslint-disable-next-line no-await-in-loop
		const {receivedMessageItems: items} = await queue.receiveMessages({numberOfMessages: 32, visibilityTimeout: 60});
		if (items.length === 0) {
			return texts;
		}

		for (const item of items) {
			texts.push(decodeMessage(item.messageText, 'base64') ?? `<not base64: ${item.messageText}>`);
			// eslint-disable-next-line no-await-in-loop
			await queue.deleteMessage(item.messageId, item.popReceipt);
		}
	}
}

export async function drainJson<T = Record<string, unknown>>(queue: QueueClient): Promise<T[]> {
	return (await drainQueue(queue)).map(text => JSON.parse(text) as T);
}

/** Messages in the queue, visible or not (Azurite counts exactly). */
export async function countMessages(queue: QueueClient): Promise<number> {
	if (!(await queue.exists())) {
		return 0;
	}

	return (await queue.getProperties()).approximateMessagesCount ?? 0;
}

let counter = 0;
/** A fresh queue name per test, so tests in one file never see each other's messages. */
export function uniqueQueueName(prefix: string): string {
	counter++;
	return `${prefix}-${process.pid}-${counter}-${Date.now().toString(36)}`.slice(0, 63).replace(/-+$/, '');
}

export function queueService(connectionString: string): QueueServiceClient {
	return QueueServiceClient.fromConnectionString(connectionString);
}
