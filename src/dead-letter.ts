// The dead-letter record: one JSON message per pair that could not be applied, or per message that could not be read.
// Every field is always present (null when it does not apply), so readers need no guessing.

import type {DeadLetterReason} from './engine/retry-decision.js';
import type {GraphFailure} from './graph/graph-failure.js';
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
	/** The raw message text, for `invalid-message` (cut at `maximumRawMessageLength` characters). */
	message: string | null;
}

/** Leaves room under the 64 KiB queue limit (after base64) for the rest of the record. */
export const maximumRawMessageLength = 16_000;
const maximumRawPairLength = 2000;

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
	};
}

export function invalidMessageRecord(reason: string, text: string, context: RecordContext): DeadLetterRecord {
	const message = text.length > maximumRawMessageLength ? `${text.slice(0, maximumRawMessageLength)}...[truncated]` : text;
	return {...failureRecord('invalid-message', null, errorInWords(reason), context), message};
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
