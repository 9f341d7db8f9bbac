// The dead-letter record: one JSON message per pair that could not be applied, or per message that could not be read.
// Every field is always present (null when it does not apply), so readers need no guessing.

import {deadLetterReasons, type DeadLetterReason} from '../engine/retry-decision.js';
import type {GraphFailure} from '../graph/graph-failure.js';
import {encodedSize, maximumEncodedMessageBytes, type MessageEncoding} from '../message/message.js';
import type {LinkAction, Pair} from '../pair/pair.js';

export type {DeadLetterReason} from '../engine/retry-decision.js';

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

/**
 * Reads a dead-letter queue message back into a record, checking every field a reader relies on: the queue may hold
 * messages sod-sync did not write (another tool, a hand edit, an older version). Anything else is a `problem` in words,
 * and such a message is shown as unreadable and left where it is: never replayed, never deleted.
 *
 * @example
 * const read = readDeadLetterRecord(text);
 * if ('problem' in read) console.log(`unreadable: ${read.problem}`);
 */
export function readDeadLetterRecord(text: string): {record: DeadLetterRecord} | {problem: string} {
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return {problem: 'not JSON'};
	}

	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		return {problem: 'not a dead-letter record (not a JSON object)'};
	}

	const record = value as Record<string, unknown>;
	const wrong = (field: string, want: string) => ({problem: `not a dead-letter record: "${field}" must be ${want}`});
	if (typeof record.reason !== 'string' || !(deadLetterReasons as readonly string[]).includes(record.reason)) {
		return wrong('reason', `one of ${deadLetterReasons.join(', ')}`);
	}

	const error = record.error as Record<string, unknown> | null | undefined;
	if (typeof error !== 'object' || error === null || typeof error.message !== 'string') {
		return wrong('error', 'an object with a message');
	}

	if (!nullOr(error.status, 'number') || !nullOr(error.code, 'string') || !nullOr(error.requestId, 'string')) {
		return wrong('error', 'an object whose status is a number and code and requestId are strings (or null)');
	}

	if (record.action !== undefined && record.action !== null && record.action !== 'add' && record.action !== 'remove') {
		return wrong('action', 'add, remove or null');
	}

	for (const field of ['correlationId', 'sourceMessageId', 'message', 'messageBlob', 'deadLetteredAt'] as const) {
		if (!nullOr(record[field], 'string')) {
			return wrong(field, 'a string or null');
		}
	}

	if (!nullOr(record.attempts, 'number')) {
		return wrong('attempts', 'a number');
	}

	const invalidPairs = record.invalidPairs;
	if (invalidPairs !== undefined && invalidPairs !== null) {
		if (!Array.isArray(invalidPairs) || invalidPairs.some(entry => typeof entry !== 'object' || entry === null || typeof (entry as {reason?: unknown}).reason !== 'string')) {
			return wrong('invalidPairs', 'a list of {pair, reason} or null');
		}
	}

	if (record.reason === 'invalid-message' && record.message == null && record.messageBlob == null) {
		return {problem: 'an invalid-message record with neither the message nor a messageBlob'};
	}

	return {
		record: {
			reason: record.reason as DeadLetterReason,
			pair: record.pair ?? null,
			action: (record.action ?? null) as LinkAction | null,
			error: {status: (error.status ?? null) as number | null, code: (error.code ?? null) as string | null, message: error.message, requestId: (error.requestId ?? null) as string | null},
			attempts: (record.attempts ?? 0) as number,
			correlationId: (record.correlationId ?? null) as string | null,
			sourceMessageId: (record.sourceMessageId ?? null) as string | null,
			deadLetteredAt: (record.deadLetteredAt ?? '') as string,
			message: (record.message ?? null) as string | null,
			messageBlob: (record.messageBlob ?? null) as string | null,
			invalidPairs: (invalidPairs ?? null) as DeadLetterRecord['invalidPairs'],
		},
	};
}

function nullOr(value: unknown, type: 'string' | 'number'): boolean {
	return value === undefined || value === null || typeof value === type;
}
