// What to do after a failed Graph call: a pure function of the failure and what has happened to the pair so far.

import type {GraphFailure} from '../graph/graph-failure.js';
import type {LinkAction} from '../pair/pair.js';
import {defaults} from '../config/settings.js';
import {backoffDelay, type BackoffOptions} from './backoff.js';

/** Every reason a record can carry, in the order `dead-letters` lists them: the one list (the type derives from it). */
export const deadLetterReasons = [
	'invalid-message',
	'invalid-pair',
	'not-found',
	'forbidden',
	'bad-request',
	'conflict',
	'retries-exhausted',
	'expired',
] as const;

export type DeadLetterReason = (typeof deadLetterReasons)[number];

/** The request that failed: a write for the pair's action, or a read of the link list to verify it. */
export type Operation = LinkAction | 'list';

export interface RetryPolicy {
	/** Retries of 5xx, timeouts and connection errors within one invocation. Defaults to 4. */
	transientRetries: number;
	/** Retries of a 404 (a package created moments ago may not have replicated). Defaults to 3. */
	notFoundRetries: number;
	/** Defaults to 200 ms doubling to 30 s. */
	transientBackoff: BackoffOptions;
	/** Defaults to 2 s doubling to 30 s: replication takes seconds, not milliseconds. */
	notFoundBackoff: BackoffOptions;
}

/** A 404's waits start at this multiple of the transient base: replication takes seconds, a bad node milliseconds. */
export const notFoundBackoffFactor = 10;
/** Neither backoff waits longer than this. Defaults to 30 s. */
const maximumRetryWaitMs = 30_000;

/**
 * The policy for `SOD_RETRY_BASE_MS` and `SOD_NOT_FOUND_RETRIES`: the one place the 404 backoff is derived.
 *
 * @example
 * retryPolicyFor(200, 3).notFoundBackoff //=> {baseMs: 2000, maximumMs: 30_000}
 */
export function retryPolicyFor(retryBaseMs: number, notFoundRetries: number): RetryPolicy {
	return {
		transientRetries: 4,
		notFoundRetries,
		transientBackoff: {baseMs: retryBaseMs, maximumMs: maximumRetryWaitMs},
		notFoundBackoff: {baseMs: retryBaseMs * notFoundBackoffFactor, maximumMs: maximumRetryWaitMs},
	};
}

export const defaultRetryPolicy: RetryPolicy = retryPolicyFor(defaults.retryBaseMs, defaults.notFoundRetries);

/** Failures so far for one pair in this invocation. An immutable value: `decideRetry` returns the next one. */
export interface RetryHistory {
	readonly transientFailures: number;
	readonly notFoundFailures: number;
}

export const freshHistory: RetryHistory = {transientFailures: 0, notFoundFailures: 0};

export type RetryDecision =
	/** Try the same request again after `delayMs` (429s never get here: the gate absorbs them). */
	| {kind: 'retry'; delayMs: number; history: RetryHistory}
	/**
	 * An add that Graph refused, perhaps because the link exists: read the list before judging; if the link is absent,
	 * the pair is dead-lettered for `reason`.
	 */
	| {kind: 'verify'; reason: 'bad-request' | 'conflict'}
	/** The failure means the goal is already met (a DELETE that finds nothing). */
	| {kind: 'already-done'}
	/** Out of retries for this invocation: hand the pair to the next attempt via the queue. */
	| {kind: 'requeue'}
	| {kind: 'dead-letter'; reason: DeadLetterReason}
	/** Not the pair's fault and not fixable by retrying it now (401, no token): fail the whole invocation. */
	| {kind: 'systemic'};

/**
 * @example
 * decideRetry('add', {kind: 'conflict', status: 409, message: '...'}, freshHistory) //=> {kind: 'verify', reason: 'conflict'}
 */
export function decideRetry(
	operation: Operation,
	failure: GraphFailure,
	history: RetryHistory,
	policy: RetryPolicy = defaultRetryPolicy,
	random: () => number = Math.random,
): RetryDecision {
	switch (failure.kind) {
		case 'unauthorized': {
			return {kind: 'systemic'};
		}

		case 'aborted': {
			return {kind: 'requeue'};
		}

		case 'forbidden': {
			return {kind: 'dead-letter', reason: 'forbidden'};
		}

		case 'not-found': {
			if (operation === 'remove') {
				return {kind: 'already-done'};
			}

			if (history.notFoundFailures >= policy.notFoundRetries) {
				return {kind: 'dead-letter', reason: 'not-found'};
			}

			return {
				kind: 'retry',
				delayMs: backoffDelay(history.notFoundFailures, policy.notFoundBackoff, random),
				history: {...history, notFoundFailures: history.notFoundFailures + 1},
			};
		}

		case 'bad-request':
		case 'conflict': {
			// What Graph answers to a duplicate add is undocumented (400 or 409 are likely): only the list can tell.
			return operation === 'add' ? {kind: 'verify', reason: failure.kind} : {kind: 'dead-letter', reason: failure.kind};
		}

		case 'throttled':
		case 'unreachable':
		case 'server':
		case 'network':
		case 'timeout': {
			if (history.transientFailures >= policy.transientRetries) {
				return {kind: 'requeue'};
			}

			return {
				kind: 'retry',
				delayMs: failure.retryAfterMs ?? backoffDelay(history.transientFailures, policy.transientBackoff, random),
				history: {...history, transientFailures: history.transientFailures + 1},
			};
		}
	}
}
