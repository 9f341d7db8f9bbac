import {describe, expect, it} from 'vitest';
import {decideRetry, defaultRetryPolicy, freshHistory, type Operation} from '../../src/engine/retry-decision.js';
import type {GraphFailure, GraphFailureKind} from '../../src/graph/graph-failure.js';

const failure = (kind: GraphFailureKind, extra: Partial<GraphFailure> = {}): GraphFailure => ({kind, message: kind, ...extra});
const half = () => 0.5;

describe('decideRetry', () => {
	it.each<[Operation, GraphFailureKind, string]>([
		['add', 'unauthorized', 'systemic'],
		['remove', 'unauthorized', 'systemic'],
		['list', 'unauthorized', 'systemic'],
		['add', 'forbidden', 'dead-letter'],
		['add', 'not-found', 'retry'],
		['remove', 'not-found', 'already-done'],
		['list', 'not-found', 'retry'],
		['add', 'bad-request', 'verify'],
		['add', 'conflict', 'verify'],
		['remove', 'bad-request', 'dead-letter'],
		['list', 'conflict', 'dead-letter'],
		['add', 'server', 'retry'],
		['add', 'network', 'retry'],
		['remove', 'timeout', 'retry'],
		['add', 'aborted', 'requeue'],
	])('%s after %s: %s', (operation, kind, decision) => {
		expect(decideRetry(operation, failure(kind), freshHistory, defaultRetryPolicy, half).kind).toBe(decision);
	});

	it('names the dead-letter reason after the failure', () => {
		expect(decideRetry('add', failure('forbidden'), freshHistory)).toEqual({kind: 'dead-letter', reason: 'forbidden'});
		expect(decideRetry('remove', failure('conflict'), freshHistory)).toEqual({kind: 'dead-letter', reason: 'conflict'});
	});

	it('retries a 404 a few times with growing waits, then dead-letters it not-found', () => {
		let history = freshHistory;
		const delays: number[] = [];
		for (let retry = 0; retry < defaultRetryPolicy.notFoundRetries; retry++) {
			const decision = decideRetry('add', failure('not-found'), history, defaultRetryPolicy, half);
			if (decision.kind !== 'retry') {
				throw new Error(`expected a retry, got ${decision.kind}`);
			}

			delays.push(decision.delayMs);
			history = decision.history;
		}

		expect(delays).toEqual([1500, 3000, 6000]);
		expect(decideRetry('add', failure('not-found'), history)).toEqual({kind: 'dead-letter', reason: 'not-found'});
	});

	it('retries transient failures, then hands the pair to the next attempt rather than dead-lettering it', () => {
		let history = freshHistory;
		for (let retry = 0; retry < defaultRetryPolicy.transientRetries; retry++) {
			const decision = decideRetry('add', failure('server', {status: 503}), history, defaultRetryPolicy, half);
			expect(decision.kind).toBe('retry');
			history = (decision as {history: typeof history}).history;
		}

		expect(decideRetry('add', failure('server'), history)).toEqual({kind: 'requeue'});
	});

	it('honours a Retry-After on a 5xx', () => {
		expect(decideRetry('add', failure('server', {status: 503, retryAfterMs: 7000}), freshHistory)).toMatchObject({
			kind: 'retry',
			delayMs: 7000,
		});
	});
});
