// How a message settles, without a queue, an engine or a clock: what it dead-letters (and why), what it re-queues
// (and in which envelope), and that every pair is counted once, under one outcome.

import {describe, expect, it} from 'vitest';
import type {GraphFailure} from '../../src/graph/graph-failure.js';
import type {PairOutcome} from '../../src/engine/link-engine.js';
import {parseMessage} from '../../src/message/message.js';
import {settleMessage, type SettleInput} from '../../src/worker/settle-message.js';

const hour = 3_600_000;
const now = Date.parse('2026-12-01T12:00:00.000Z');
const pair = (n: number) => ({
	accessPackageId: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
	incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(n + 100).padStart(12, '0')}`,
});
const notFound: GraphFailure = {kind: 'not-found', status: 404, message: 'no such package'};
const serverError: GraphFailure = {kind: 'server', status: 503, message: 'try later'};
const throttled: GraphFailure = {kind: 'throttled', status: 429, message: 'slow down', retryAfterMs: 30_000};

function input(message: unknown, overrides: Partial<SettleInput> = {}): SettleInput {
	return {
		parsed: parseMessage(JSON.stringify(message)),
		outcomes: [],
		handedBack: [],
		context: {attempt: 0, firstEnqueuedAt: now - hour, now},
		policy: {maxAttempts: 3, maxPairAgeMs: 72 * hour},
		record: {action: 'add', attempts: 1, correlationId: 'import-42', sourceMessageId: 'm-1', at: new Date(now)},
		encoding: 'none',
		...overrides,
	};
}

const total = (outcomes: Record<string, number>) => Object.values(outcomes).reduce((sum, count) => sum + count, 0);

describe('settleMessage', () => {
	it('dead-letters an unreadable message as one record, and counts it as one', () => {
		const settled = settleMessage({...input({}), parsed: parseMessage('not json')});
		expect(settled.deadLetters.map(record => record.reason)).toEqual(['invalid-message']);
		expect(settled.outcomes['dead-letter']).toBe(1);
		expect(settled.requeueMessages).toEqual([]);
	});

	it('counts the group rules\' share of each outcome apart, and writes a group rule\'s dead letter and re-queue under its own field', () => {
		const group = (n: number) => ({accessPackageId: pair(n).accessPackageId, incompatibleGroupId: pair(n).incompatibleAccessPackageId});
		const outcomes: PairOutcome[] = [
			{pair: pair(1), status: 'linked'},
			{pair: group(2), status: 'linked'},
			{pair: group(3), status: 'dead-letter', reason: 'not-found', failure: notFound},
			{pair: group(4), status: 'deferred', delayMs: 30_000, failed: false, lastFailure: throttled},
		];
		const settled = settleMessage(input({pairs: [pair(1), group(2), group(3), group(4), {accessPackageId: 'nope', incompatibleGroupId: 'x'}]}, {outcomes}));
		expect(settled.outcomes).toEqual({linked: 2, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 2, requeued: 1});
		// The invalid pair is of no kind: it counts in the totals only.
		expect(settled.groupOutcomes).toEqual({linked: 1, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 1, requeued: 1});
		expect(settled.deadLetters.find(record => record.reason === 'not-found')?.pair).toEqual(group(3));
		expect(settled.requeueMessages.map(message => JSON.parse(message.text).pairs)).toEqual([[group(4)]]);
	});

	it('counts every pair once: applied, dead-lettered by Graph\'s answer, invalid, waiting, failed, handed back', () => {
		const pairs = [1, 2, 3, 4, 5, 6].map(pair);
		const outcomes: PairOutcome[] = [
			{pair: pairs[0]!, status: 'linked'},
			{pair: pairs[1]!, status: 'already-linked'},
			{pair: pairs[2]!, status: 'dead-letter', reason: 'not-found', failure: notFound},
			{pair: pairs[3]!, status: 'deferred', delayMs: 30_000, failed: false, lastFailure: throttled},
			{pair: pairs[4]!, status: 'deferred', delayMs: 0, failed: true, lastFailure: serverError},
		];
		const settled = settleMessage(
			input(
				{correlationId: 'import-42', pairs: [...pairs, {accessPackageId: 'nope', incompatibleAccessPackageId: pairs[0]!.accessPackageId}]},
				{outcomes, handedBack: [{kind: 'requeue', pairs: [pairs[5]!], attempt: 0, delayMs: 12_000}]},
			),
		);
		expect(settled.outcomes).toEqual({linked: 1, 'already-linked': 1, removed: 0, 'already-absent': 0, 'dead-letter': 2, requeued: 3});
		expect(total(settled.outcomes)).toBe(7);
		expect(settled.deadLetterReasons).toEqual({'invalid-pair': 1, 'not-found': 1});
		expect(settled.finished).toEqual([
			{pair: pairs[0], status: 'linked'},
			{pair: pairs[1], status: 'already-linked'},
		]);
		// The waiting pair keeps its attempt; the failed one spends one and comes back after 15 s; the handed-back pair
		// was written when the run began, so it is counted but not written again.
		const requeued = settled.requeueMessages.map(({text, visibilityTimeoutSeconds}) => ({envelope: JSON.parse(text) as Record<string, unknown>, visibilityTimeoutSeconds}));
		expect(requeued).toEqual([
			{envelope: expect.objectContaining({pairs: [pairs[3]], attempt: 0, correlationId: 'import-42', origin: 'requeue', firstEnqueuedAt: '2026-12-01T11:00:00.000Z'}), visibilityTimeoutSeconds: 30},
			{envelope: expect.objectContaining({pairs: [pairs[4]], attempt: 1, origin: 'requeue'}), visibilityTimeoutSeconds: 15},
		]);
		expect(settled.requeueDelaySeconds).toBe(30);
	});

	it('dead-letters retries-exhausted on the last attempt, naming the last failure', () => {
		const settled = settleMessage(
			input({pairs: [pair(1)]}, {outcomes: [{pair: pair(1), status: 'deferred', delayMs: 0, failed: true, lastFailure: serverError}], context: {attempt: 2, firstEnqueuedAt: now, now}}),
		);
		expect(settled.deadLetters).toHaveLength(1);
		expect(settled.deadLetters[0]).toMatchObject({reason: 'retries-exhausted', pair: pair(1)});
		expect(settled.deadLetters[0]!.error.message).toMatch(/^failed in 3 attempts \(SOD_MAX_ATTEMPTS 3\); last failure: /);
		expect(settled.outcomes.requeued).toBe(0);
	});

	it('dead-letters a handed-back pair that had expired, as one of the message\'s outcomes', () => {
		const settled = settleMessage(
			input({pairs: [pair(1)]}, {handedBack: [{kind: 'dead-letter', reason: 'expired', pair: pair(1), lastFailure: undefined, detail: 'not applied 73.0 h after it was first queued'}]}),
		);
		expect(settled.deadLetters.map(record => [record.reason, record.error.message])).toEqual([['expired', 'not applied 73.0 h after it was first queued']]);
		expect(settled.outcomes['dead-letter']).toBe(1);
	});
});
