// Reading and redriving the dead-letter queue. Storage queues can only peek at the first 32 messages, so reading all
// of them means receiving them (hidden for a while) and then making each visible again: the records and their count are
// left as they were. If the process dies in between, the hidden ones reappear on their own after `holdSeconds`.

import type {QueueClient} from '@azure/storage-queue';
import pLimit from 'p-limit';
import type {DeadLetterReason, DeadLetterRecord} from '../dead-letter.js';
import {MessagePacker, type MessageEncoding} from '../message.js';
import {checkPair, pairKey, type LinkAction} from '../pair.js';
import type {RawMessageStore} from '../storage/raw-message-store.js';
import {decodeMessage} from './storage-queue.js';

export interface HeldMessage {
	messageId: string;
	popReceipt: string;
	/** The parsed record; undefined when the message is not one (see `problem`). */
	record: DeadLetterRecord | undefined;
	problem: string | undefined;
}

/** Records `redrive` sends back unless `--reason` names others: the failures a fix or a wait can cure. */
export const defaultRedriveReasons: readonly DeadLetterReason[] = ['not-found', 'forbidden', 'bad-request', 'conflict', 'retries-exhausted', 'expired'];

const holdSeconds = 300;
const storageConcurrency = 16;

/** Receives every message on the queue, hiding each for `holdSeconds`. */
export async function holdAll(queue: QueueClient, encoding: MessageEncoding): Promise<HeldMessage[]> {
	const held: HeldMessage[] = [];
	if (!(await queue.exists())) {
		return held;
	}

	for (;;) {
		// eslint-disable-next-line no-await-in-loop
		const {receivedMessageItems: items} = await queue.receiveMessages({numberOfMessages: 32, visibilityTimeout: holdSeconds});
		if (items.length === 0) {
			return held;
		}

		for (const item of items) {
			held.push({messageId: item.messageId, popReceipt: item.popReceipt, ...readRecord(decodeMessage(item.messageText, encoding))});
		}
	}
}

/** Makes held messages visible again, unchanged. */
export async function release(queue: QueueClient, held: readonly HeldMessage[]): Promise<void> {
	const limit = pLimit(storageConcurrency);
	await Promise.all(held.map(async message => limit(async () => queue.updateMessage(message.messageId, message.popReceipt, undefined, 0))));
}

/** Every record on the queue, which is left as it was. */
export async function listDeadLetters(queue: QueueClient, encoding: MessageEncoding): Promise<HeldMessage[]> {
	const held = await holdAll(queue, encoding);
	await release(queue, held);
	return held;
}

export interface RedriveResult {
	/** Records sent back to the pairs queue and removed from the dead-letter queue. */
	redriven: number;
	/** Pair-less records (`invalid-message`) sent back as their raw message. */
	resent: number;
	/** Records left in place: other reasons, unreadable, or a raw message that was cut short. */
	left: number;
	messagesSent: number;
}

export interface RedriveOptions {
	deadLetterQueue: QueueClient;
	/** Sends a text message (encoded as the app's queues are) to the pairs queue. */
	sendToPairsQueue: (text: string) => Promise<void>;
	encoding: MessageEncoding;
	reasons: readonly DeadLetterReason[];
	/** Where records that name a `messageBlob` keep their raw message. */
	rawMessages?: RawMessageStore;
}

/**
 * Sends the chosen records back to the pairs queue, packed into as few messages as fit, with `attempt` reset to 0, and
 * deletes each record only after the message carrying it was sent. The others are made visible again.
 */
export async function redriveDeadLetters(options: RedriveOptions): Promise<RedriveResult> {
	const {deadLetterQueue, encoding} = options;
	const held = await holdAll(deadLetterQueue, encoding);
	const result: RedriveResult = {redriven: 0, resent: 0, left: 0, messagesSent: 0};
	const keep: HeldMessage[] = [];
	const groups = new Map<string, {packer: MessagePacker; members: HeldMessage[]; pairs: Set<string>}>();
	const sends: Array<Promise<void>> = [];
	const limit = pLimit(storageConcurrency);
	const sendThenDelete = (text: string, members: HeldMessage[], counter: 'redriven' | 'resent') => {
		sends.push(
			limit(async () => {
				await options.sendToPairsQueue(text);
				result.messagesSent++;
				for (const member of members) {
					// eslint-disable-next-line no-await-in-loop
					await deadLetterQueue.deleteMessage(member.messageId, member.popReceipt);
					result[counter]++;
				}
			}),
		);
	};

	for (const message of held) {
		const record = message.record;
		if (!record || !options.reasons.includes(record.reason)) {
			keep.push(message);
			continue;
		}

		if (record.reason === 'invalid-message') {
			if (typeof record.messageBlob === 'string' && options.rawMessages) {
				const reference = record.messageBlob;
				const store = options.rawMessages;
				sends.push(
					limit(async () => {
						await options.sendToPairsQueue(await store.read(reference));
						result.messagesSent++;
						await deadLetterQueue.deleteMessage(message.messageId, message.popReceipt);
						result.resent++;
						await store.remove(reference).catch(() => undefined);
					}),
				);
			} else if (record.message === null || record.message.endsWith('...[truncated]')) {
				// Records from before whole messages were kept may hold a cut copy: replaying it would not be the message.
				keep.push(message);
			} else {
				sendThenDelete(record.message, [message], 'resent');
			}

			continue;
		}

		if (record.reason === 'invalid-pair' && Array.isArray(record.invalidPairs)) {
			const pairs = record.invalidPairs.map(entry => entry.pair);
			sendThenDelete(JSON.stringify({pairs, action: record.action ?? 'add', correlationId: record.correlationId ?? undefined}), [message], 'redriven');
			continue;
		}

		const checked = checkPair(record.pair);
		const action: LinkAction = record.action === 'remove' ? 'remove' : 'add';
		if (checked.kind === 'invalid') {
			// An invalid pair goes back as it was sent; the worker will dead-letter it again unless the cause was fixed upstream.
			sendThenDelete(JSON.stringify({pairs: [record.pair], action, correlationId: record.correlationId ?? undefined}), [message], 'redriven');
			continue;
		}

		const key = JSON.stringify([action, record.correlationId]);
		let group = groups.get(key);
		if (!group) {
			group = {packer: new MessagePacker({action, correlationId: record.correlationId ?? undefined, attempt: 0}, encoding), members: [], pairs: new Set()};
			groups.set(key, group);
		}

		// A record written twice (its message was delivered again) goes back once; both copies are deleted.
		if (group.pairs.has(pairKey(checked.pair))) {
			group.members.push(message);
			continue;
		}

		group.pairs.add(pairKey(checked.pair));
		const full = group.packer.add(checked.pair);
		if (full !== undefined) {
			// The pair just added starts the next message; everyone before it rode in `full`.
			const last = group.members;
			group.members = [];
			sendThenDelete(full, last, 'redriven');
		}

		group.members.push(message);
	}

	for (const group of groups.values()) {
		const last = group.packer.flush();
		if (last !== undefined) {
			sendThenDelete(last, group.members, 'redriven');
		}
	}

	const settled = await Promise.allSettled(sends);
	result.left = keep.length;
	await release(deadLetterQueue, keep);
	const failed = settled.find(outcome => outcome.status === 'rejected');
	if (failed) {
		// Records whose message was not sent were not deleted: they reappear after the hold.
		throw new Error(`redrive stopped: ${((failed as PromiseRejectedResult).reason as Error).message}; unsent records reappear within ${holdSeconds} s`);
	}

	return result;
}

function readRecord(text: string | undefined): {record: DeadLetterRecord | undefined; problem: string | undefined} {
	if (text === undefined) {
		return {record: undefined, problem: 'not valid base64'};
	}

	try {
		const value = JSON.parse(text) as DeadLetterRecord;
		if (typeof value?.reason !== 'string') {
			return {record: undefined, problem: 'not a dead-letter record (no "reason")'};
		}

		return {record: value, problem: undefined};
	} catch {
		return {record: undefined, problem: 'not JSON'};
	}
}

/**
 * Records that say the same thing: same reason, action, pair (or raw message) and source message. A message that is
 * delivered again after its dead letters were written (the host died before deleting it) writes them again; readers
 * count such copies once.
 */
export function deadLetterIdentity(record: DeadLetterRecord): string {
	return JSON.stringify([record.reason, record.action, record.sourceMessageId, record.pair, record.message, record.messageBlob ?? null, record.invalidPairs ?? null]);
}
