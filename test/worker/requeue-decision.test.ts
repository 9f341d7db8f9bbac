import {describe, expect, it} from 'vitest';
import type {GraphFailure} from '../../src/graph/graph-failure.js';
import {decideHandBack, decideRequeue, failureRequeueDelayMs, type DeferredPair, type RequeueContext} from '../../src/worker/requeue-decision.js';

const hour = 3_600_000;
const now = Date.parse('2026-11-30T12:00:00.000Z');
const policy = {maxAttempts: 3, maxPairAgeMs: 72 * hour};
const pair = (n: number) => ({
	accessPackageId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
	incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(n + 100).padStart(12, '0')}`,
});
const throttled: GraphFailure = {kind: 'throttled', status: 429, message: 'slow down', retryAfterMs: 30_000};
const serverError: GraphFailure = {kind: 'server', status: 503, message: 'try later'};
const refused: GraphFailure = {kind: 'unreachable', code: 'UnreachableError', message: 'connect ECONNREFUSED'};
const waited = (n: number, delayMs: number, lastFailure?: GraphFailure): DeferredPair => ({pair: pair(n), delayMs, failed: false, lastFailure});
const failed = (n: number, lastFailure = serverError): DeferredPair => ({pair: pair(n), delayMs: 0, failed: true, lastFailure});

function at(overrides: Partial<RequeueContext> = {}): RequeueContext {
	return {attempt: 0, firstEnqueuedAt: now - hour, now, ...overrides};
}

describe('decideRequeue', () => {
	it('re-queues a pair that only waited with its attempts unspent, visible when the wait ends, even on the last attempt', () => {
		for (const lastFailure of [throttled, refused, undefined]) {
			expect(decideRequeue([waited(1, 30_000, lastFailure)], at({attempt: 2}), policy)).toEqual([
				{kind: 'requeue', pairs: [pair(1)], attempt: 2, delayMs: 30_000},
			]);
		}
	});

	it('re-queues what was not admitted at once, with its attempts unspent, visible when the process could serve it', () => {
		expect(decideHandBack([pair(1), pair(2)], 12_000, at({attempt: 1}), policy)).toEqual([
			{kind: 'requeue', pairs: [pair(1), pair(2)], attempt: 1, delayMs: 12_000},
		]);
	});

	it.each([
		[0, 1, 15_000],
		[1, 2, 45_000],
	])('charges a failure: attempt %i becomes %i, back after %i ms', (attempt, next, delayMs) => {
		expect(decideRequeue([failed(1)], at({attempt}), policy)).toEqual([{kind: 'requeue', pairs: [pair(1)], attempt: next, delayMs}]);
	});

	it('dead-letters retries-exhausted only when the failed attempts reach SOD_MAX_ATTEMPTS', () => {
		const actions = decideRequeue([failed(1), waited(2, 1000, throttled)], at({attempt: 2}), policy);
		expect(actions).toEqual([
			{kind: 'dead-letter', reason: 'retries-exhausted', pair: pair(1), lastFailure: serverError, detail: 'failed in 3 attempts (SOD_MAX_ATTEMPTS 3)'},
			{kind: 'requeue', pairs: [pair(2)], attempt: 2, delayMs: 1000},
		]);
	});

	it('dead-letters expired, with the age and the limit, every pair still unapplied past the age limit', () => {
		const old = at({firstEnqueuedAt: now - 73 * hour});
		const actions = [...decideRequeue([waited(1, 1000, throttled), failed(2)], old, policy), ...decideHandBack([pair(3)], 5000, old, policy)];
		expect(actions.map(action => (action.kind === 'dead-letter' ? [action.reason, action.pair, action.lastFailure] : action.kind))).toEqual([
			['expired', pair(2), serverError],
			['expired', pair(1), throttled],
			['expired', pair(3), undefined],
		]);
		expect(actions[0]).toMatchObject({detail: 'not applied 73.0 h after it was first queued (2026-11-27T11:00:00.000Z); SOD_MAX_PAIR_AGE_HOURS is 72.0 h'});
	});

	it('grows the wait after a failure from seconds to minutes, and caps it', () => {
		expect([1, 2, 3, 4, 5, 9].map(failureRequeueDelayMs)).toEqual([15_000, 45_000, 135_000, 405_000, 900_000, 900_000]);
	});

	it('has nothing to do when nothing is unfinished', () => {
		expect(decideRequeue([], at(), policy)).toEqual([]);
		expect(decideHandBack([], 5000, at(), policy)).toEqual([]);
	});
});
