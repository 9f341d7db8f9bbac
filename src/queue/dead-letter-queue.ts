// Reading and redriving the dead-letter queue. Storage queues can only peek at the first 32 messages, so reading all
// of them means receiving them (hidden for a while) and, for those that stay, making each visible again at the end.
// A scan sees each message once however long it takes: the hold doubles whenever a held message comes back early,
// and only message ids and pop receipts are kept, never the records, so a million records fit in a few tens of MB.
// If the process dies, the held messages reappear on their own when their hold ends.

import type {DequeuedMessageItem, QueueClient} from '@azure/storage-queue';
import {readDeadLetterRecord, type DeadLetterReason, type DeadLetterRecord} from '../dead-letter/dead-letter-record.js';
import {MessagePacker, type MessageEncoding} from '../message/message.js';
import {checkPair, pairKey, type LinkAction} from '../pair/pair.js';
import type {RawMessageStore} from '../storage/raw-message-store.js';
import {decodeMessage} from './storage-queue.js';

export interface ScannedMessage {
	messageId: string;
	/** The parsed record; undefined when the message is not one (see `problem`). */
	record: DeadLetterRecord | undefined;
	problem: string | undefined;
}

export interface ScanProgress {
	/** Messages seen so far, each once. */
	seen: number;
	/** The queue's approximate size when the scan started (messages added since are seen too). */
	expected: number;
}

export interface ScanOptions {
	/**
	 * How long each received message stays hidden at first. Defaults to 300 s plus 10 ms per message on the queue at
	 * the start, at most 7 days; it doubles whenever a held message comes back before the scan ends.
	 */
	holdSeconds?: number;
	onProgress?: (progress: ScanProgress) => void;
}

/** Records `redrive` sends back unless `--reason` names others: the failures a fix or a wait can cure. */
export const defaultRedriveReasons: readonly DeadLetterReason[] = ['not-found', 'forbidden', 'bad-request', 'conflict', 'retries-exhausted', 'expired'];

/** A queue message may stay invisible for at most 7 days. */
const maximumHoldSeconds = 7 * 24 * 3600;
const storageConcurrency = 16;
const receiveBatch = 32;
/** Records that could not go back, listed by a redrive; the rest are counted. */
export const maximumExamples = 100;

/**
 * Sees every message on the queue once. Each message yielded is held (invisible) until it is `remove`d or the scan
 * `release`s what is left: callers decide per message, the scan remembers only ids and pop receipts.
 *
 * @example
 * const scan = new DeadLetterScan(queue, 'base64');
 * for await (const message of scan.messages()) if (done(message)) await scan.remove(message.messageId);
 * await scan.release();
 */
export class DeadLetterScan {
	readonly #queue: QueueClient;
	readonly #encoding: MessageEncoding;
	readonly #options: ScanOptions;
	/** Every message received and not yet removed: its latest pop receipt (a message received again gets a new one). */
	readonly #held = new Map<string, string>();
	#holdSeconds = 0;
	#seen = 0;
	#receives = 0;
	#returnedEarly = 0;

	constructor(queue: QueueClient, encoding: MessageEncoding, options: ScanOptions = {}) {
		this.#queue = queue;
		this.#encoding = encoding;
		this.#options = options;
	}

	/** Messages seen, receive calls made, and how often a held message came back before the scan ended. */
	get stats(): {seen: number; receives: number; returnedEarly: number; holdSeconds: number} {
		return {seen: this.#seen, receives: this.#receives, returnedEarly: this.#returnedEarly, holdSeconds: this.#holdSeconds};
	}

	async *messages(): AsyncGenerator<ScannedMessage> {
		if (!(await this.#queue.exists())) {
			return;
		}

		const {approximateMessagesCount: expected = 0} = await this.#queue.getProperties();
		this.#holdSeconds = Math.min(maximumHoldSeconds, Math.ceil(this.#options.holdSeconds ?? 300 + expected * 0.01));
		for (;;) {
			// eslint-disable-next-line no-await-in-loop
			const {receivedMessageItems: items} = await this.#queue.receiveMessages({numberOfMessages: receiveBatch, visibilityTimeout: this.#holdSeconds});
			this.#receives++;
			if (items.length === 0) {
				return;
			}

			let returned = false;
			for (const item of items) {
				if (this.#held.has(item.messageId)) {
					// Held earlier in this scan and back already: hide it again (the receive just did), never show it twice.
					this.#held.set(item.messageId, item.popReceipt);
					this.#returnedEarly++;
					returned = true;
					continue;
				}

				this.#held.set(item.messageId, item.popReceipt);
				this.#seen++;
				yield {messageId: item.messageId, ...readMessage(item, this.#encoding)};
			}

			if (returned) {
				this.#holdSeconds = Math.min(maximumHoldSeconds, this.#holdSeconds * 2);
			}

			this.#options.onProgress?.({seen: this.#seen, expected: Math.max(expected, this.#seen)});
		}
	}

	/** Deletes a message this scan holds (with its latest pop receipt). */
	async remove(messageId: string): Promise<void> {
		const popReceipt = this.#held.get(messageId);
		if (popReceipt === undefined) {
			throw new Error(`message ${messageId} is not held by this scan`);
		}

		await this.#queue.deleteMessage(messageId, popReceipt);
		this.#held.delete(messageId);
	}

	/** Makes every message still held visible again, unchanged. */
	async release(): Promise<void> {
		const ids = [...this.#held.keys()];
		let next = 0;
		const worker = async () => {
			while (next < ids.length) {
				const id = ids[next++]!;
				// eslint-disable-next-line no-await-in-loop
				await this.#queue.updateMessage(id, this.#held.get(id)!, undefined, 0);
				this.#held.delete(id);
			}
		};

		await Promise.all(Array.from({length: Math.min(storageConcurrency, ids.length)}, worker));
	}
}

/** Every record on the queue, handed to `visit` one at a time; the queue is left as it was. */
export async function listDeadLetters(
	queue: QueueClient,
	encoding: MessageEncoding,
	visit: (message: ScannedMessage) => void,
	options: ScanOptions = {},
): Promise<{seen: number}> {
	const scan = new DeadLetterScan(queue, encoding, options);
	try {
		for await (const message of scan.messages()) {
			visit(message);
		}
	} finally {
		await scan.release();
	}

	return {seen: scan.stats.seen};
}

export interface RedriveResult {
	/** Records sent back to the pairs queue and removed from the dead-letter queue. */
	redriven: number;
	/** Pair-less records (`invalid-message`) sent back as their raw message (copies of one message count once each). */
	resent: number;
	/** Records of other reasons, left in place. */
	left: number;
	/**
	 * Records that could not go back (unreadable, or of a chosen reason but not replayable), left in place: how many,
	 * and the first `maximumExamples` with why.
	 */
	notRedriven: {total: number; examples: Array<{messageId: string; reason: DeadLetterReason | undefined; problem: string}>};
	messagesSent: number;
}

export interface RedriveOptions extends ScanOptions {
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
 * deletes each record only after the message carrying it was sent. Unreadable records, and chosen ones that cannot go
 * back (a cut message, a raw-message blob that is gone), are left and listed in `notRedriven`; the rest go on. A raw
 * message that several records name (a message delivered twice) is sent once, and its blob deleted after every record
 * naming it in this run is gone. Rejects when the pairs queue cannot be written: records not yet sent stay.
 */
export async function redriveDeadLetters(options: RedriveOptions): Promise<RedriveResult> {
	const {deadLetterQueue, encoding} = options;
	const scan = new DeadLetterScan(deadLetterQueue, encoding, options);
	const result: RedriveResult = {redriven: 0, resent: 0, left: 0, notRedriven: {total: 0, examples: []}, messagesSent: 0};
	const groups = new Map<string, {packer: MessagePacker; members: string[]; pairs: Set<string>}>();
	/** Raw-message blobs already sent back in this run: later copies naming one are removed without sending it again. */
	const resentBlobs = new Set<string>();
	const pending = new Set<Promise<void>>();
	let failure: Error | undefined;
	const start = async (work: () => Promise<void>) => {
		const task = work().catch((error: unknown) => {
			failure ??= error instanceof Error ? error : new Error(String(error));
		});
		const tracked = task.finally(() => pending.delete(tracked));
		pending.add(tracked);
		while (pending.size >= storageConcurrency) {
			// eslint-disable-next-line no-await-in-loop
			await Promise.race(pending);
		}
	};

	const sendThenRemove = async (text: string, members: string[], counter: 'redriven' | 'resent') =>
		start(async () => {
			await options.sendToPairsQueue(text);
			result.messagesSent++;
			for (const member of members) {
				// eslint-disable-next-line no-await-in-loop
				await scan.remove(member);
				result[counter]++;
			}
		});
	const leave = (message: ScannedMessage, problem: string) => {
		result.notRedriven.total++;
		if (result.notRedriven.examples.length < maximumExamples) {
			result.notRedriven.examples.push({messageId: message.messageId, reason: message.record?.reason, problem});
		}
	};

	try {
		for await (const message of scan.messages()) {
			if (failure) {
				break;
			}

			const record = message.record;
			if (!record) {
				leave(message, `unreadable: ${message.problem}`);
				continue;
			}

			if (!options.reasons.includes(record.reason)) {
				result.left++;
				continue;
			}

			if (record.reason === 'invalid-message') {
				// eslint-disable-next-line no-await-in-loop
				await redriveRawMessage(message, record);
				continue;
			}

			if (record.reason === 'invalid-pair' && record.invalidPairs !== null) {
				const pairs = record.invalidPairs.map(entry => entry.pair);
				// eslint-disable-next-line no-await-in-loop
				await sendThenRemove(JSON.stringify({pairs, action: record.action ?? 'add', correlationId: record.correlationId ?? undefined, origin: 'redrive'}), [message.messageId], 'redriven');
				continue;
			}

			const checked = checkPair(record.pair);
			const action: LinkAction = record.action === 'remove' ? 'remove' : 'add';
			if (checked.kind === 'invalid') {
				// An invalid pair goes back as it was sent; the worker will dead-letter it again unless the cause was fixed upstream.
				// eslint-disable-next-line no-await-in-loop
				await sendThenRemove(JSON.stringify({pairs: [record.pair], action, correlationId: record.correlationId ?? undefined, origin: 'redrive'}), [message.messageId], 'redriven');
				continue;
			}

			const key = JSON.stringify([action, record.correlationId]);
			let group = groups.get(key);
			if (!group) {
				group = {packer: new MessagePacker({action, correlationId: record.correlationId ?? undefined, attempt: 0, origin: 'redrive'}, encoding), members: [], pairs: new Set()};
				groups.set(key, group);
			}

			// A record written twice (its message was delivered again) goes back once; both copies are deleted.
			if (group.pairs.has(pairKey(checked.pair))) {
				group.members.push(message.messageId);
				continue;
			}

			group.pairs.add(pairKey(checked.pair));
			const full = group.packer.add(checked.pair);
			if (full !== undefined) {
				// The pair just added starts the next message; everyone before it rode in `full`.
				const last = group.members;
				group.members = [];
				group.pairs = new Set([pairKey(checked.pair)]);
				// eslint-disable-next-line no-await-in-loop
				await sendThenRemove(full, last, 'redriven');
			}

			group.members.push(message.messageId);
		}

		if (!failure) {
			for (const group of groups.values()) {
				const last = group.packer.flush();
				if (last !== undefined) {
					// eslint-disable-next-line no-await-in-loop
					await sendThenRemove(last, group.members, 'redriven');
				}
			}
		}

		await Promise.all(pending);
		if (!failure) {
			// Every record naming these blobs in this run is gone: nothing left to replay them for.
			await Promise.all([...resentBlobs].map(async reference => options.rawMessages?.remove(reference).catch(() => undefined)));
		}
	} finally {
		await Promise.all(pending);
		await scan.release();
	}

	if (failure) {
		// Records whose message was not sent were not deleted: they are visible again.
		throw new Error(`redrive stopped: ${failure.message || failure.name}; records not yet sent were left on the queue`);
	}

	return result;

	async function redriveRawMessage(message: ScannedMessage, record: DeadLetterRecord): Promise<void> {
		if (record.messageBlob !== null) {
			const reference = record.messageBlob;
			if (resentBlobs.has(reference)) {
				// Another copy of a message already sent back in this run.
				await start(async () => {
					await scan.remove(message.messageId);
					result.resent++;
				});
				return;
			}

			if (!options.rawMessages) {
				leave(message, `its raw message is in blob ${reference}, and no blob storage is configured`);
				return;
			}

			let text: string;
			try {
				text = await options.rawMessages.read(reference);
			} catch (error) {
				leave(message, `its raw message blob ${reference} cannot be read (${describeStorageError(error)}); the record stays for an operator to look at`);
				return;
			}

			resentBlobs.add(reference);
			await sendThenRemove(text, [message.messageId], 'resent');
			return;
		}

		if (record.message === null || record.message.endsWith('...[truncated]')) {
			// Records from before whole messages were kept may hold a cut copy: replaying it would not be the message.
			leave(message, 'its raw message was cut short when it was dead-lettered: replaying it would not be the message');
			return;
		}

		await sendThenRemove(record.message, [message.messageId], 'resent');
	}
}

function readMessage(item: DequeuedMessageItem, encoding: MessageEncoding): {record: DeadLetterRecord | undefined; problem: string | undefined} {
	const text = decodeMessage(item.messageText, encoding);
	if (text === undefined) {
		return {record: undefined, problem: 'not valid base64'};
	}

	const read = readDeadLetterRecord(text);
	return 'record' in read ? {record: read.record, problem: undefined} : {record: undefined, problem: read.problem};
}

function describeStorageError(error: unknown): string {
	const {statusCode, code, message} = (error ?? {}) as {statusCode?: number; code?: string; message?: string};
	return [statusCode, code].filter(Boolean).join(' ') || message?.split('\n')[0] || 'unknown error';
}

/**
 * Records that say the same thing: same reason, action, pair (or raw message) and source message. A message that is
 * delivered again after its dead letters were written (the host died before deleting it) writes them again; readers
 * count such copies once.
 */
export function deadLetterIdentity(record: DeadLetterRecord): string {
	return JSON.stringify([record.reason, record.action, record.sourceMessageId, record.pair, record.message, record.messageBlob ?? null, record.invalidPairs ?? null]);
}
