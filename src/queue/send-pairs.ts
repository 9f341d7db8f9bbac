// Sends a list of pairs to the pairs queue, packed into as few messages as fit, a few at a time.

import pLimit from 'p-limit';
import {packPairs, type MessageEncoding, type PairsEnvelope} from '../message.js';
import type {Pair} from '../pair.js';
import type {SendOptions} from './storage-queue.js';

export interface TextSink {
	send(text: string, options?: SendOptions): Promise<void>;
}

/** Resolves with the number of messages written; rejects with the first failure (pairs already sent stay sent). */
export async function sendPairs(
	queue: TextSink,
	pairs: readonly Pair[],
	envelope: Omit<PairsEnvelope, 'pairs'>,
	encoding: MessageEncoding,
): Promise<number> {
	const limit = pLimit(16);
	const messages = [...packPairs(pairs, envelope, encoding)];
	await Promise.all(messages.map(async text => limit(async () => queue.send(text))));
	return messages.length;
}
