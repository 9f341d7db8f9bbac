import {describe, expect, it} from 'vitest';
import {OutcomeTotals} from '../../src/cli/outcome-totals.js';
import type {MessageSummary} from '../../src/worker/pairs-handler.js';

const summary = (outcomes: Partial<MessageSummary['outcomes']>, deadLetters: MessageSummary['deadLetters'] = {}, groupOutcomes: Partial<MessageSummary['outcomes']> = {}): MessageSummary => ({
	messageId: 'm',
	correlationId: undefined,
	attempts: 1,
	pairs: 0,
	outcomes: {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0, ...outcomes},
	groupOutcomes: {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0, ...groupOutcomes},
	groupDeadLetters: {},
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
		expect(totals.table()).not.toContain('group rules');
	});

	it('shows the group rules\' share in a column of its own when a run had any', () => {
		const totals = new OutcomeTotals();
		totals.add(summary({linked: 10, 'dead-letter': 2}, {'not-found': 2}, {linked: 4, 'dead-letter': 1}));
		totals.add(summary({linked: 5}, {}, {linked: 1}));
		const table = totals.table().split('\n');
		expect(table[0]).toBe(`  ${''.padEnd(16)}     pairs   group rules`);
		expect(table).toContain('  linked                  15             5');
		expect(table).toContain('  dead-letter              2             1  (not-found 2)');
	});
});
