// Adds up the per-message summaries of a run into the outcome table the CLI prints.

import type {DeadLetterReason} from '../dead-letter/dead-letter-record.js';
import type {MessageSummary, Outcome} from '../worker/pairs-handler.js';
import {formatCount} from './command-line.js';

export class OutcomeTotals {
	messages = 0;
	readonly outcomes: Record<Outcome, number> = {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0};
	readonly deadLetters: Partial<Record<DeadLetterReason, number>> = {};

	add(summary: MessageSummary): void {
		this.messages++;
		for (const [outcome, count] of Object.entries(summary.outcomes) as Array<[Outcome, number]>) {
			this.outcomes[outcome] += count;
		}

		for (const [reason, count] of Object.entries(summary.deadLetters) as Array<[DeadLetterReason, number]>) {
			this.deadLetters[reason] = (this.deadLetters[reason] ?? 0) + count;
		}
	}

	/** `linked 120 · already-linked 3 · dead-letter 2`: for the live line. */
	brief(): string {
		const parts = Object.entries(this.outcomes)
			.filter(([, count]) => count > 0)
			.map(([outcome, count]) => `${outcome} ${formatCount(count)}`);
		return `${formatCount(this.messages)} messages: ${parts.length > 0 ? parts.join(' · ') : 'nothing yet'}`;
	}

	/** The table printed at the end. */
	table(): string {
		const rows = Object.entries(this.outcomes).map(([outcome, count]) => {
			let detail = '';
			if (outcome === 'dead-letter' && count > 0) {
				detail = `  (${Object.entries(this.deadLetters)
					.map(([reason, n]) => `${reason} ${formatCount(n)}`)
					.join(', ')})`;
			} else if (outcome === 'requeued' && count > 0) {
				detail = '  (pair-messages re-queued for a later attempt, counted each time)';
			}

			return `  ${outcome.padEnd(16)}${formatCount(count).padStart(10)}${detail}`;
		});
		return [`  ${'messages'.padEnd(16)}${formatCount(this.messages).padStart(10)}`, ...rows].join('\n');
	}
}
