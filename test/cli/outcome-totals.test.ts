import {describe, expect, it} from 'vitest';
import {OutcomeTotals} from '../../src/cli/outcome-totals.js';
import type {MessageSummary} from '../../src/worker/pairs-handler.js';

const summary = (outcomes: Partial<MessageSummary['outcomes']>, deadLetters: MessageSummary['deadLetters'] = {}): MessageSummary => ({
	messageId: 'm',
	correlationId: undefined,
	attempts: 1,
	pairs: 0,
	outcomes: {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0, ...outcomes},
	deadLetters,
	requeueDelaySeconds: undefined,
	durationMs: 1,
	ageMs: 1,
});

describe('OutcomeTotals', () => {
	it('adds up messages, outcomes and dead-letter reasons', () => {
		const totals = new OutcomeTotals();
		expect(totals.brief()).toBe('0 messages: nothing yet');
		totals.add(summary({linked: 1200, 'dead-letter': 2}, {'not-found': 1, expired: 1}));
		totals.add(summary({linked: 3, requeued: 5}, {}));
		expect(totals.brief()).toBe('2 messages: linked 1,203 · dead-letter 2 · requeued 5');
		expect(totals.table()).toContain('  dead-letter              2  (not-found 1, expired 1)');
		expect(totals.table()).toContain('  messages                 2');
	});
});
