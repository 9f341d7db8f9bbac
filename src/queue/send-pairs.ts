// Sends a list of pairs to the pairs queue, packed into as few messages as fit, a few at a time.

import pLimit from 'p-limit';
import {MessagePacker, packPairs, type MessageEncoding, type PairsEnvelope} from '../message/message.js';
import {reversePair, type Pair} from '../pair/pair.js';
import type {PairRow} from '../pair/pair-file.js';
import type {MessageSink} from './storage-queue.js';

/** Messages sent at once. */
const sendConcurrency = 16;

/** Resolves with the number of messages written; rejects with the first failure (pairs already sent stay sent). */
export async function sendPairs(
	queue: MessageSink,
	pairs: readonly Pair[],
	envelope: Omit<PairsEnvelope, 'pairs'>,
	encoding: MessageEncoding,
): Promise<number> {
	const limit = pLimit(sendConcurrency);
	const messages = [...packPairs(pairs, envelope, encoding)];
	await Promise.all(messages.map(async text => limit(async () => queue.send(text))));
	return messages.length;
}

export interface SentRows {
	/** Pairs sent, as the worker counts them: each direction of a symmetric row, a pair repeated in one message once. */
	pairs: number;
	messages: number;
	/** Pairs not sent because the message being filled held them already. */
	duplicates: number;
	/** Pairs in the messages the queue accepted (`pairs` less those of messages not sent after a failure). */
	sentPairs: number;
	/** The first send that failed; sending stopped there (what was sent stays sent: re-running is safe). */
	failure: unknown;
}

/**
 * Packs the valid rows of a pair file into messages and sends them, `sendConcurrency` at a time, reading no further
 * ahead than that (p-limit's queue is the back-pressure: a send waits for its turn when the queue is full), so a file
 * of any size is sent in constant memory. A row marked symmetric, or every row when the envelope says `symmetric`,
 * also sends its reverse, so that every pair is in the message as the worker will count it; a pair the message being
 * filled already holds is not sent twice. Stops at the first failure or when `signal` aborts.
 */
export async function sendPairRows(
	rows: AsyncIterable<PairRow>,
	queue: MessageSink,
	envelope: Omit<PairsEnvelope, 'pairs'>,
	encoding: MessageEncoding,
	options: {signal?: AbortSignal; onProgress?: (sent: Omit<SentRows, 'failure'>) => void} = {},
): Promise<SentRows> {
	const limit = pLimit(sendConcurrency);
	const {symmetric: everyRowBothWays, ...sent} = envelope;
	const packer = new MessagePacker(sent, encoding);
	const result: SentRows = {pairs: 0, messages: 0, duplicates: 0, sentPairs: 0, failure: undefined};
	const sends: Array<Promise<void>> = [];
	const send = async (text: string, pairs: number) => {
		const sent = limit(async () => {
			if (result.failure === undefined) {
				await queue.send(text);
				result.messages++;
				result.sentPairs += pairs;
			}
		}).catch((error: unknown) => {
			result.failure ??= error;
		});
		sends.push(sent);
		if (limit.pendingCount >= sendConcurrency) {
			await sent;
		}
	};

	for await (const row of rows) {
		if (result.failure !== undefined || options.signal?.aborted) {
			break;
		}

		if (row.kind === 'invalid') {
			continue;
		}

		const {pair: rule} = row;
		const bothWays = (row.symmetric || everyRowBothWays) && rule.incompatibleAccessPackageId !== undefined;
		for (const pair of bothWays ? [rule, reversePair(rule)] : [rule]) {
			if (packer.holds(pair)) {
				result.duplicates++;
				continue;
			}

			result.pairs++;
			const held = packer.pending;
			const full = packer.add(pair);
			if (full !== undefined) {
				await send(full, held);
			}
		}

		options.onProgress?.(result);
	}

	const held = packer.pending;
	const last = packer.flush();
	if (last !== undefined && result.failure === undefined && !options.signal?.aborted) {
		await send(last, held);
	}

	await Promise.all(sends);
	return result;
}
