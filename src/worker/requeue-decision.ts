// What becomes of the pairs a message could not finish: back on the queue (when, and with how many attempts spent) or
// into the dead-letter queue (and why). A pure function of what happened, like `decideRetry`.
//
// Attempts count failures, not waiting: only a pair whose own requests failed (5xx, timeouts, dropped connections,
// repeated 404s) spends one, and it comes back after a delay that grows with the attempts spent. A pair that waited
// (gate shut by a 429 or by Graph being unreachable, no time left in the invocation, not admitted at the current pace,
// the host shutting down) keeps its count. Waiting is bounded by age instead: a pair still not applied
// `maxPairAgeMs` after it first entered the queue is dead-lettered `expired`.

import type {GraphFailure} from '../graph/graph-failure.js';
import type {Pair} from '../pair/pair.js';

export interface RequeuePolicy {
	/** `SOD_MAX_ATTEMPTS`: failed attempts before `retries-exhausted`. */
	maxAttempts: number;
	/** `SOD_MAX_PAIR_AGE_HOURS`, in ms: waiting longer than this since first queued is `expired`. */
	maxPairAgeMs: number;
}

/** A pair the engine deferred (see `PairOutcome`). */
export interface DeferredPair {
	pair: Pair;
	delayMs: number;
	failed: boolean;
	lastFailure: GraphFailure | undefined;
}

/** The message the unfinished pairs came in, and the moment of the decision. */
export interface RequeueContext {
	/** Failed attempts the message's pairs had spent before this invocation (the envelope's `attempt`). */
	attempt: number;
	/** When the pairs first entered the queue (epoch ms). */
	firstEnqueuedAt: number;
	now: number;
}

export type RequeueAction =
	| {kind: 'requeue'; pairs: Pair[]; attempt: number; delayMs: number}
	| {kind: 'dead-letter'; reason: 'retries-exhausted' | 'expired'; pair: Pair; lastFailure: GraphFailure | undefined; detail: string};

/**
 * The wait before a pair that failed comes back, after its `spent`-th failed attempt: 15 s, tripling, at most 15 min.
 * With the default 5 attempts a pair is retried at about 15 s, 1 min, 3 min and 10 min after its first failure: a
 * failing Graph (5xx, timeouts) is ridden out for about 10 minutes; an unreachable one only ages.
 */
export function failureRequeueDelayMs(spent: number): number {
	return Math.min(failureRequeueMaximumMs, failureRequeueBaseMs * 3 ** Math.max(0, spent - 1));
}

/** Defaults to 15 s. */
export const failureRequeueBaseMs = 15_000;
/** Defaults to 15 min. */
export const failureRequeueMaximumMs = 15 * 60_000;

/**
 * What becomes of the pairs the engine deferred: a failure spends an attempt (and, at SOD_MAX_ATTEMPTS, is
 * `retries-exhausted`); waiting does not; past the age limit every one is `expired`.
 *
 * @example
 * decideRequeue([{pair, delayMs: 2000, failed: false, lastFailure}], {attempt: 0, firstEnqueuedAt: now, now},
 *   {maxAttempts: 5, maxPairAgeMs: 72 * 3_600_000})
 * //=> [{kind: 'requeue', pairs: [pair], attempt: 0, delayMs: 2000}]
 */
export function decideRequeue(deferred: readonly DeferredPair[], context: RequeueContext, policy: RequeuePolicy): RequeueAction[] {
	const {attempt, now, firstEnqueuedAt} = context;
	const ageMs = Math.max(0, now - firstEnqueuedAt);
	const expired = ageMs >= policy.maxPairAgeMs;
	const actions: RequeueAction[] = [];
	const waited: DeferredPair[] = [];
	const failed: DeferredPair[] = [];
	for (const item of deferred) {
		(item.failed ? failed : waited).push(item);
	}

	const spent = attempt + 1;
	const failedToRequeue: Pair[] = [];
	for (const item of failed) {
		if (spent >= policy.maxAttempts) {
			actions.push({
				kind: 'dead-letter',
				reason: 'retries-exhausted',
				pair: item.pair,
				lastFailure: item.lastFailure,
				detail: `failed in ${spent} attempt${spent === 1 ? '' : 's'} (SOD_MAX_ATTEMPTS ${policy.maxAttempts})`,
			});
		} else if (expired) {
			actions.push(expiredAction(item.pair, item.lastFailure, ageMs, firstEnqueuedAt, policy));
		} else {
			failedToRequeue.push(item.pair);
		}
	}

	if (expired) {
		for (const item of waited) {
			actions.push(expiredAction(item.pair, item.lastFailure, ageMs, firstEnqueuedAt, policy));
		}
	} else if (waited.length > 0) {
		actions.push({kind: 'requeue', pairs: waited.map(item => item.pair), attempt, delayMs: Math.max(...waited.map(item => item.delayMs))});
	}

	if (failedToRequeue.length > 0) {
		const delayMs = Math.max(failureRequeueDelayMs(spent), ...failed.map(item => item.delayMs));
		actions.push({kind: 'requeue', pairs: failedToRequeue, attempt: spent, delayMs});
	}

	return actions;
}

/**
 * What becomes of the pairs not admitted (more than this process could send before the deadline at its pace): back
 * on the queue at once with their attempts unspent, visible when the process could serve them (`admissionDelayMs`),
 * or `expired` past the age limit.
 *
 * @example
 * decideHandBack([pair], 12_000, {attempt: 1, firstEnqueuedAt: now, now}, policy)
 * //=> [{kind: 'requeue', pairs: [pair], attempt: 1, delayMs: 12_000}]
 */
export function decideHandBack(notAdmitted: readonly Pair[], admissionDelayMs: number, context: RequeueContext, policy: RequeuePolicy): RequeueAction[] {
	const {attempt, now, firstEnqueuedAt} = context;
	const ageMs = Math.max(0, now - firstEnqueuedAt);
	if (ageMs >= policy.maxPairAgeMs) {
		return notAdmitted.map(pair => expiredAction(pair, undefined, ageMs, firstEnqueuedAt, policy));
	}

	return notAdmitted.length > 0 ? [{kind: 'requeue', pairs: [...notAdmitted], attempt, delayMs: admissionDelayMs}] : [];
}

function expiredAction(
	pair: Pair,
	lastFailure: GraphFailure | undefined,
	ageMs: number,
	firstEnqueuedAt: number,
	policy: RequeuePolicy,
): RequeueAction {
	const hours = (ms: number) => `${(ms / 3_600_000).toFixed(1)} h`;
	return {
		kind: 'dead-letter',
		reason: 'expired',
		pair,
		lastFailure,
		detail: `not applied ${hours(ageMs)} after it was first queued (${new Date(firstEnqueuedAt).toISOString()}); SOD_MAX_PAIR_AGE_HOURS is ${hours(policy.maxPairAgeMs)}`,
	};
}
