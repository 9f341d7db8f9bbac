// The dead-letter record: one JSON message per pair that could not be applied, or per message that could not be read.
// Every field is always present (null when it does not apply), so readers need no guessing.

import type {DeadLetterReason} from './engine/retry-decision.js';
import type {GraphFailure} from './graph/graph-failure.js';
import {encodedSize, maximumEncodedMessageBytes, type MessageEncoding} from './message.js';
import type {LinkAction, Pair} from './pair.js';

export type {DeadLetterReason} from './engine/retry-decision.js';

export interface DeadLetterError {
	/** HTTP status from Graph; null when no response arrived or Graph was never called. */
	status: number | null;
	/** Graph's `error.code` (or the transport's error name); null when none. */
	code: string | null;
	/** What went wrong, in words. */
	message: string;
	/** Graph's `request-id`, to quote to Microsoft support. */
	requestId: string | null;
}

export interface DeadLetterRecord {
	reason: DeadLetterReason;
	/** The pair, normalised; for `invalid-pair`, as it was sent. Null for `invalid-message`. */
	pair: Pair | unknown;
	action: LinkAction | null;
	error: DeadLetterError;
	/** Invocations that worked on the pair, this one included. */
	attempts: number;
	correlationId: string | null;
	/** The queue message id it came from. */
	sourceMessageId: string | null;
	deadLetteredAt: string;
	/** The raw message text, whole, for `invalid-message`; null when it is kept in a blob instead (see `messageBlob`). */
	message: string | null;
	/**
	 * `container/name` of the blob holding the raw message when the record with it inline would not fit a queue
	 * message (64 KiB once encoded); `dead-letters redrive` reads it from there. Null otherwise.
	 */
	messageBlob: string | null;
	/**
	 * For an `invalid-pair` record standing for many: the pairs as they were sent, each with its reason (`pair` is null
	 * then). A message with more than `maximumSingleInvalidPairRecords` invalid pairs gets a few such records, not one
	 * per pair. Null otherwise.
	 */
	invalidPairs: Array<{pair: unknown; reason: string}> | null;
}

const maximumRawPairLength = 2000;
/** Up to this many invalid pairs of one message get a record each; more are grouped. Defaults to 20. */
export const maximumSingleInvalidPairRecords = 20;
/** Room left under the queue's 64 KiB for what the queue adds. */
export const maximumRecordBytes = maximumEncodedMessageBytes - 1024;

export interface RecordContext {
	action: LinkAction | null;
	attempts: number;
	correlationId: string | undefined;
	sourceMessageId: string | undefined;
	at: Date;
}

export function failureRecord(reason: DeadLetterReason, pair: unknown, error: DeadLetterError, context: RecordContext): DeadLetterRecord {
	return {
		reason,
		pair: boundedPair(pair),
		action: context.action,
		error,
		attempts: context.attempts,
		correlationId: context.correlationId ?? null,
		sourceMessageId: context.sourceMessageId ?? null,
		deadLetteredAt: context.at.toISOString(),
		message: null,
		messageBlob: null,
		invalidPairs: null,
	};
}

/** The record of a message that cannot be read, holding its raw text whole (see `fitRecord` for one too large). */
export function invalidMessageRecord(reason: string, text: string, context: RecordContext): DeadLetterRecord {
	return {...failureRecord('invalid-message', null, errorInWords(reason), context), message: text};
}

/**
 * The records for a message's invalid pairs: one each for a few; for many, as few grouped records as fit a queue
 * message (a hostile message must not cost thousands of writes).
 */
export function invalidPairRecords(
	invalid: ReadonlyArray<{raw: unknown; reason: string}>,
	context: RecordContext,
	encoding: MessageEncoding,
): DeadLetterRecord[] {
	if (invalid.length <= maximumSingleInvalidPairRecords) {
		return invalid.map(item => failureRecord('invalid-pair', item.raw, errorInWords(item.reason), context));
	}

	const records: DeadLetterRecord[] = [];
	let group: Array<{pair: unknown; reason: string}> = [];
	const close = () => {
		if (group.length > 0) {
			const error = errorInWords(`${group.length} pairs of this message are invalid; each is listed with its reason in invalidPairs`);
			records.push({...failureRecord('invalid-pair', null, error, context), invalidPairs: group});
			group = [];
		}
	};

	let bytes = 0;
	for (const item of invalid) {
		const entry = {pair: boundedPair(item.raw), reason: item.reason};
		const size = encodedSize(JSON.stringify(entry), encoding) + 2;
		if (group.length > 0 && bytes + size > maximumRecordBytes - 2048) {
			close();
			bytes = 0;
		}

		group.push(entry);
		bytes += size;
	}

	close();
	return records;
}

export function errorFromFailure(failure: GraphFailure): DeadLetterError {
	return {
		status: failure.status ?? null,
		code: failure.code ?? null,
		message: failure.message,
		requestId: failure.requestId ?? null,
	};
}

export function errorInWords(message: string): DeadLetterError {
	return {status: null, code: null, message, requestId: null};
}

/** A hostile "pair" can be any JSON up to the message size: keep it whole only when it is small. */
function boundedPair(pair: unknown): unknown {
	if (pair === undefined) {
		return null;
	}

	const json = JSON.stringify(pair) ?? 'null';
	return json.length > maximumRawPairLength ? `${json.slice(0, maximumRawPairLength)}...[truncated]` : pair;
}
