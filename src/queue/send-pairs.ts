// Sends a list of pairs to the pairs queue, packed into as few messages as fit, a few at a time.

import pLimit from 'p-limit';
import {packPairs, type MessageEncoding, type PairsEnvelope} from '../message.js';
import type {Pair} from '../pair.js';
import type {MessageSink} from './storage-queue.js';

/** Resolves with the number of messages written; rejects with the first failure (pairs already sent stay sent). */
export async function sendPairs(
	queue: MessageSink,
	pairs: readonly Pair[],
	envelope: Omit<PairsEnvelope, 'pairs'>,
	encoding: MessageEncoding,
): Promise<number> {
	const limit = pLimit(16);
	const messages = [...packPairs(pairs, envelope, encoding)];
	await Promise.all(messages.map(async text => limit(async () => queue.send(text))));
	return messages.length;
}
