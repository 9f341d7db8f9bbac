// Adds up the per-message summaries of a run into the outcome table the CLI prints.

import type {DeadLetterReason} from '../dead-letter/dead-letter-record.js';
import type {MessageSummary, Outcome} from '../worker/pairs-handler.js';
import {formatCount} from './command-line.js';

export class OutcomeTotals {
	messages = 0;
	readonly outcomes: Record<Outcome, number> = {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0};
	/** The group rules' share of `outcomes`. */
	readonly groupOutcomes: Record<Outcome, number> = {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0};
	readonly deadLetters: Partial<Record<DeadLetterReason, number>> = {};

	add(summary: MessageSummary): void {
		this.messages++;
		for (const [outcome, count] of Object.entries(summary.outcomes) as Array<[Outcome, number]>) {
			this.outcomes[outcome] += count;
		}

		for (const [outcome, count] of Object.entries(summary.groupOutcomes) as Array<[Outcome, number]>) {
			this.groupOutcomes[outcome] += count;
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

	/** The table printed at the end; with a column for the group rules' share when there were any. */
	table(): string {
		const groups = Object.values(this.groupOutcomes).some(count => count > 0);
		const rows = Object.entries(this.outcomes).map(([outcome, count]) => {
			let detail = '';
			if (outcome === 'dead-letter' && count > 0) {
				detail = `  (${Object.entries(this.deadLetters)
					.map(([reason, n]) => `${reason} ${formatCount(n)}`)
					.join(', ')})`;
			} else if (outcome === 'requeued' && count > 0) {
				detail = '  (pair-messages re-queued for a later attempt, counted each time)';
			}

			const groupColumn = groups ? formatCount(this.groupOutcomes[outcome as Outcome]).padStart(14) : '';
			return `  ${outcome.padEnd(16)}${formatCount(count).padStart(10)}${groupColumn}${detail}`;
		});
		const header = groups ? [`  ${''.padEnd(16)}${'pairs'.padStart(10)}${'group rules'.padStart(14)}`] : [];
		return [...header, `  ${'messages'.padEnd(16)}${formatCount(this.messages).padStart(10)}`, ...rows].join('\n');
	}
}
