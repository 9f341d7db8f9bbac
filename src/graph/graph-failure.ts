// Turns what Graph answered (a response, a `$batch` item, or the transport's error when nothing came back) into a typed
// failure, once, at the edge where it arrives: two readers put each source in one shape, one classifier decides.
// Everything past this point branches on `kind` and `status`, never on a message's words.

import {parseRetryAfter} from './retry-after.js';

export type GraphFailureKind =
	| 'throttled' // 429: the workload asks every caller to wait
	| 'unauthorized' // 401, or no token could be had: systemic, not the pair's fault
	| 'forbidden' // 403: the identity lacks the permission or role
	| 'not-found' // 404: missing package, or one created moments ago (replication lag)
	| 'conflict' // 409
	| 'bad-request' // 400 and any other 4xx
	| 'server' // 5xx
	| 'unreachable' // no connection could be made (refused, no route, no DNS): the request never left, Graph is down for us
	| 'network' // connection dropped or reset: the request may or may not have been applied
	| 'timeout' // no answer in time: the request may or may not have been applied
	| 'aborted'; // this process stopped waiting (shutdown or a systemic failure elsewhere)

export interface GraphFailure {
	readonly kind: GraphFailureKind;
	/** HTTP status; absent when no response arrived. */
	readonly status?: number;
	/** Graph's `error.code`, or the transport's error name when no response arrived. */
	readonly code?: string;
	readonly message: string;
	readonly requestId?: string;
	/** From `Retry-After`, when the response carried one. */
	readonly retryAfterMs?: number;
}

/**
 * What came back for one request, read from wherever it arrived (`readSdkError`, `readBatchItem`): an HTTP answer, or
 * the transport's error when none came. `classifyAnswer` is the one place that decides what it means.
 */
export type GraphAnswer =
	| {
			kind: 'response';
			status: number;
			code?: string | undefined;
			message?: string | undefined;
			requestId?: string | undefined;
			retryAfter?: string | undefined;
	  }
	| {kind: 'no-response'; name: string | undefined; message: string};

/** Names the transport gives the errors it throws, so they survive the SDK's re-wrapping (which keeps only name and message). */
export const transportErrorNames = {
	network: 'NetworkError',
	unreachable: 'UnreachableError',
	untrustedOrigin: 'UntrustedOriginError',
	timeout: 'RequestTimeoutError',
	aborted: 'AbortError',
	token: 'TokenAcquisitionError',
} as const;

/** What each transport error means; any other error without a response is a dropped connection. */
const kindOfTransportError: Readonly<Record<string, GraphFailureKind>> = {
	[transportErrorNames.token]: 'unauthorized',
	[transportErrorNames.timeout]: 'timeout',
	[transportErrorNames.unreachable]: 'unreachable',
	[transportErrorNames.untrustedOrigin]: 'bad-request',
	[transportErrorNames.aborted]: 'aborted',
};

/**
 * The one classifier of a Graph answer, for a plain request's and a `$batch` item's alike.
 *
 * @example
 * classifyAnswer({kind: 'response', status: 429, retryAfter: '2'}, Date.now()) // {kind: 'throttled', status: 429, retryAfterMs: 2000, ...}
 */
export function classifyAnswer(answer: GraphAnswer, now: number): GraphFailure {
	if (answer.kind === 'no-response') {
		const kind = (answer.name !== undefined && Object.hasOwn(kindOfTransportError, answer.name) ? kindOfTransportError[answer.name] : undefined) ?? 'network';
		return {kind, code: answer.name ?? 'Error', message: truncate(answer.message || 'request failed without a response')};
	}

	const {status} = answer;
	const failure: {-readonly [K in keyof GraphFailure]: GraphFailure[K]} = {kind: kindOfStatus(status), status, message: truncate(answer.message || `HTTP ${status}`)};
	if (answer.code) {
		failure.code = truncate(answer.code, 100);
	}

	if (answer.requestId) {
		failure.requestId = truncate(answer.requestId, 100);
	}

	const retryAfterMs = parseRetryAfter(answer.retryAfter, now);
	if (retryAfterMs !== undefined) {
		failure.retryAfterMs = retryAfterMs;
	}

	return failure;
}

function kindOfStatus(status: number): GraphFailureKind {
	switch (status) {
		case 401: {
			return 'unauthorized';
		}

		case 403: {
			return 'forbidden';
		}

		case 404: {
			return 'not-found';
		}

		case 409: {
			return 'conflict';
		}

		case 429: {
			return 'throttled';
		}

		default: {
			return status >= 500 ? 'server' : 'bad-request';
		}
	}
}

interface ErrorLike {
	statusCode?: unknown;
	code?: unknown;
	name?: unknown;
	message?: unknown;
	requestId?: unknown;
	headers?: unknown;
}

/**
 * Reads what a Graph SDK call threw. `GraphError` carries `statusCode` (-1 without a response), `code`, `requestId`
 * and the response `headers`; an error without a response is known by its name (`transportErrorNames`).
 */
export function readSdkError(error: unknown): GraphAnswer {
	const value: ErrorLike = typeof error === 'object' && error !== null ? (error as ErrorLike) : {message: String(error)};
	const code = typeof value.code === 'string' ? value.code : typeof value.name === 'string' ? value.name : undefined;
	const message = typeof value.message === 'string' ? value.message : '';
	if (typeof value.statusCode === 'number' && value.statusCode > 0) {
		const headers = value.headers as {get?: (name: string) => string | null} | undefined;
		return {
			kind: 'response',
			status: value.statusCode,
			code,
			message,
			requestId: typeof value.requestId === 'string' ? value.requestId : undefined,
			retryAfter: (typeof headers?.get === 'function' ? headers.get('retry-after') : undefined) ?? undefined,
		};
	}

	return {kind: 'no-response', name: code, message};
}

/** One item of a `$batch` answer, as Graph sends it (every field unchecked). */
export interface BatchItem {
	id?: unknown;
	status?: unknown;
	headers?: Record<string, unknown>;
	body?: unknown;
}

/** Reads a `$batch` item's answer: its status, its Graph error body and its own headers (`retry-after`, `request-id`). */
export function readBatchItem(item: BatchItem): Extract<GraphAnswer, {kind: 'response'}> {
	const headers = Object.fromEntries(Object.entries(item.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
	const error = (item.body as {error?: {code?: unknown; message?: unknown; innerError?: Record<string, unknown>}} | undefined)?.error;
	return {
		kind: 'response',
		status: typeof item.status === 'number' ? item.status : 0,
		code: typeof error?.code === 'string' ? error.code : undefined,
		message: typeof error?.message === 'string' ? error.message : undefined,
		requestId: typeof error?.innerError?.['request-id'] === 'string' ? error.innerError['request-id'] : headers['request-id'],
		retryAfter: headers['retry-after'],
	};
}

/** Kinds after which a write may or may not have been applied. */
export function outcomeUnknown(failure: GraphFailure): boolean {
	return failure.kind === 'network' || failure.kind === 'timeout';
}

function truncate(text: string, maximum = 500): string {
	return text.length > maximum ? `${text.slice(0, maximum)}...` : text;
}
