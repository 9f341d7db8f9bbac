// Turns whatever a Graph call threw into a typed failure, once, at the edge where the response arrives.
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

export interface ResponseDetails {
	code?: string | null | undefined;
	message?: string | null | undefined;
	requestId?: string | null | undefined;
	retryAfter?: string | null | undefined;
}

/** Classifies an HTTP error status (also used for the inner responses of a `$batch`). */
export function classifyStatus(status: number, details: ResponseDetails, now: number): GraphFailure {
	const failure: {-readonly [K in keyof GraphFailure]: GraphFailure[K]} = {
		kind: kindOfStatus(status),
		status,
		message: truncate(details.message || `HTTP ${status}`),
	};
	if (details.code) {
		failure.code = truncate(details.code, 100);
	}

	if (details.requestId) {
		failure.requestId = truncate(details.requestId, 100);
	}

	const retryAfterMs = parseRetryAfter(details.retryAfter, now);
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

/** Names the transport gives the errors it throws, so they survive the SDK's re-wrapping (which keeps only name and message). */
export const transportErrorNames = {
	network: 'NetworkError',
	unreachable: 'UnreachableError',
	untrustedOrigin: 'UntrustedOriginError',
	timeout: 'RequestTimeoutError',
	aborted: 'AbortError',
	token: 'TokenAcquisitionError',
} as const;

interface ErrorLike {
	statusCode?: unknown;
	code?: unknown;
	name?: unknown;
	message?: unknown;
	requestId?: unknown;
	headers?: unknown;
}

/**
 * Classifies anything a Graph SDK call threw. `GraphError` carries `statusCode` (-1 without a response), `code`,
 * `requestId` and the response `headers`; other errors are judged by their name.
 */
export function classifyError(error: unknown, now: number): GraphFailure {
	const value: ErrorLike = typeof error === 'object' && error !== null ? (error as ErrorLike) : {message: String(error)};
	const status = typeof value.statusCode === 'number' ? value.statusCode : -1;
	const code = typeof value.code === 'string' ? value.code : typeof value.name === 'string' ? value.name : undefined;
	const message = typeof value.message === 'string' ? value.message : '';
	if (status > 0) {
		const headers = value.headers as {get?: (name: string) => string | null} | undefined;
		return classifyStatus(
			status,
			{
				code,
				message,
				requestId: typeof value.requestId === 'string' ? value.requestId : undefined,
				retryAfter: typeof headers?.get === 'function' ? headers.get('retry-after') : undefined,
			},
			now,
		);
	}

	const kind: GraphFailureKind =
		code === transportErrorNames.token
			? 'unauthorized'
			: code === transportErrorNames.timeout
				? 'timeout'
				: code === transportErrorNames.unreachable
					? 'unreachable'
					: code === transportErrorNames.untrustedOrigin
						? 'bad-request'
				: code === transportErrorNames.aborted
					? 'aborted'
					: 'network';
	return {kind, code: code ?? 'Error', message: truncate(message || 'request failed without a response')};
}

/** Kinds after which a write may or may not have been applied. */
export function outcomeUnknown(failure: GraphFailure): boolean {
	return failure.kind === 'network' || failure.kind === 'timeout';
}

function truncate(text: string, maximum = 500): string {
	return text.length > maximum ? `${text.slice(0, maximum)}...` : text;
}
