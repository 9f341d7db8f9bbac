// `sod-sync dead-letters list | redrive`: read the dead-letter queue grouped by reason, and send records back.

import {createHash} from 'node:crypto';
import type {DeadLetterReason, DeadLetterRecord} from '../dead-letter/dead-letter-record.js';
import {deadLetterReasons} from '../engine/retry-decision.js';
import {
	deadLetterIdentity,
	defaultRedriveReasons,
	listDeadLetters,
	redriveDeadLetters,
	type ScannedMessage,
	type ScanProgress,
} from '../queue/dead-letter-queue.js';
import {pairText} from '../pair/pair.js';
import {printable} from '../text/untrusted-text.js';
import {rawMessageStoreFor} from '../worker/worker-runtime.js';
import {exitCodes, formatCount, parseCommandLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';
import {openAppStorage} from '../queue/app-storage.js';

const reasons: readonly DeadLetterReason[] = deadLetterReasons;

/** Records shown in full per reason by `list`; the rest are counted. */
export const maximumShownPerReason = 200;

export const deadLettersHelp = `Usage: sod-sync dead-letters list [--json]
       sod-sync dead-letters redrive [--reason R]...

list     prints the records on the dead-letter queue grouped by reason, with counts (the first ${maximumShownPerReason} of each
         reason in full). Read-only: the records are received and made visible again unchanged (storage queues can
         only peek at 32). Each record is read once, however large the queue.
redrive  sends the chosen records back to the pairs queue (attempt reset to 0) and removes each from the dead-letter
         queue only after the message carrying it was sent. Default reasons: ${defaultRedriveReasons.join(', ')}.
         invalid-pair and invalid-message records go back only when named (fix the producer first).

A message on the queue that is not a dead-letter record sod-sync can read (another tool's, a hand edit) is shown as
unreadable and left where it is: never replayed, never deleted. So is a chosen record that cannot be replayed (its
raw message was cut short, or its blob is gone). On a terminal, progress is shown on stderr.

Options:
  --json                     list: one JSON array of the records (unreadable ones as {"unreadable": why, "messageId"})
  --reason R                 redrive: a reason to send back (repeatable): ${reasons.join(', ')}
${settingFlagsHelp}

Exit codes: 0 done; 3 done, but unreadable records (list), or records that could not be redriven (redrive), were
found and left on the queue; 1 storage failure; 2 bad usage.`;

export async function deadLettersCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {json: {type: 'boolean'}, reason: {type: 'string', multiple: true}});
	const [subcommand, ...extra] = positionals;
	if (values.help || subcommand === undefined) {
		io.stdout.write(`${deadLettersHelp}\n`);
		return values.help ? exitCodes.ok : exitCodes.invalidInput;
	}

	if (extra.length > 0 || (subcommand !== 'list' && subcommand !== 'redrive')) {
		throw new UsageError(`dead-letters takes list or redrive, got '${positionals.join(' ')}'`);
	}

	const {settings} = settingsFrom(values, io.environment);
	const storage = openAppStorage(settings);
	const {encoding} = storage;
	const deadLetterQueue = storage.queue(settings.deadLetterQueueName);
	const progress = progressLine(io);
	if (subcommand === 'list') {
		if (values.reason) {
			throw new UsageError('--reason goes with redrive');
		}

		const summary = new DeadLetterSummary();
		let first = true;
		if (values.json) {
			io.stdout.write('[');
		}

		try {
			await listDeadLetters(
				deadLetterQueue,
				encoding,
				message => {
					summary.add(message);
					if (values.json) {
						const item = message.record ?? {unreadable: message.problem, messageId: message.messageId};
						io.stdout.write(`${first ? '\n' : ',\n'}${JSON.stringify(item)}`);
						first = false;
					}
				},
				{onProgress: progress.update},
			);
		} finally {
			progress.done();
		}

		io.stdout.write(values.json ? `${first ? '' : '\n'}]\n` : summary.describe(settings.deadLetterQueueName));
		return summary.unreadable > 0 ? exitCodes.drift : exitCodes.ok;
	}

	const chosen = (values.reason ?? defaultRedriveReasons) as DeadLetterReason[];
	for (const reason of chosen) {
		if (!reasons.includes(reason)) {
			throw new UsageError(`--reason must be one of ${reasons.join(', ')}; got '${reason}'`);
		}
	}

	let result;
	try {
		result = await redriveDeadLetters({
			deadLetterQueue,
			sendToPairsQueue: async text => storage.pairs.send(text),
			encoding,
			reasons: chosen,
			rawMessages: rawMessageStoreFor(settings),
			onProgress: progress.update,
		});
	} finally {
		progress.done();
	}

	const {notRedriven} = result;
	io.stdout.write(
		`redrove ${formatCount(result.redriven + result.resent)} records (${chosen.join(', ')}) to '${settings.queueName}' in ${formatCount(result.messagesSent)} messages; ${formatCount(result.left + notRedriven.total)} left on '${settings.deadLetterQueueName}'\n`,
	);
	if (notRedriven.total > 0) {
		io.stderr.write(`${formatCount(notRedriven.total)} records could not be redriven and were left on the queue:\n`);
		for (const item of notRedriven.examples) {
			io.stderr.write(`  message ${printable(item.messageId, 100)}${item.reason ? ` (${item.reason})` : ''}: ${item.problem}\n`);
		}

		if (notRedriven.total > notRedriven.examples.length) {
			io.stderr.write(`  ... and ${formatCount(notRedriven.total - notRedriven.examples.length)} more\n`);
		}

		return exitCodes.drift;
	}

	return exitCodes.ok;
}

/**
 * What `list` prints, gathered one record at a time in bounded memory: every record counted by reason, copies of one
 * record (its message was delivered again) counted once, and the first `maximumShownPerReason` of each reason kept to
 * show. Distinct records are told apart by a 16-byte digest of what they say, not by holding them.
 */
export class DeadLetterSummary {
	readonly #groups = new Map<string, {distinct: number; shown: Array<{line: string; identity: string | undefined}>}>();
	readonly #digests = new Set<string>();
	readonly #copiesShown = new Map<string, number>();
	#records = 0;
	#unreadable = 0;

	get unreadable(): number {
		return this.#unreadable;
	}

	add(message: ScannedMessage): void {
		this.#records++;
		const key = message.record?.reason ?? 'unreadable';
		let identity: string | undefined;
		if (message.record) {
			identity = createHash('sha256').update(deadLetterIdentity(message.record)).digest('base64').slice(0, 22);
			if (this.#digests.has(identity)) {
				if (this.#copiesShown.has(identity)) {
					this.#copiesShown.set(identity, this.#copiesShown.get(identity)! + 1);
				}

				return;
			}

			this.#digests.add(identity);
		} else {
			this.#unreadable++;
		}

		let group = this.#groups.get(key);
		if (!group) {
			group = {distinct: 0, shown: []};
			this.#groups.set(key, group);
		}

		group.distinct++;
		if (group.shown.length < maximumShownPerReason) {
			group.shown.push({
				line: message.record ? describeRecord(message.record) : `  message ${printable(message.messageId, 100)}: unreadable, left on the queue: ${message.problem}`,
				identity,
			});
			if (identity !== undefined) {
				this.#copiesShown.set(identity, 1);
			}
		}
	}

	/** Grouped by reason, most frequent first, one line per record shown. */
	describe(queueName: string): string {
		const sections = [...this.#groups.entries()]
			.sort(([, a], [, b]) => b.distinct - a.distinct)
			.map(([reason, group]) => {
				const lines = group.shown.map(({line, identity}) => {
					const times = identity === undefined ? 1 : this.#copiesShown.get(identity)!;
					return `${line}${times > 1 ? `  (written ${times} times: its message was delivered again)` : ''}`;
				});
				if (group.distinct > group.shown.length) {
					lines.push(`  ... and ${formatCount(group.distinct - group.shown.length)} more (--json lists every record)`);
				}

				return `${reason} (${formatCount(group.distinct)})\n${lines.join('\n')}`;
			});
		const distinct = [...this.#groups.values()].reduce((sum, group) => sum + group.distinct, 0);
		return `${formatCount(distinct)} dead letters on '${queueName}'${distinct < this.#records ? ` (${formatCount(this.#records)} records)` : ''}\n${sections.length > 0 ? `\n${sections.join('\n\n')}\n` : ''}`;
	}
}

/** Progress on stderr when it is a terminal (one line, redrawn at most 4 times a second); nothing otherwise. */
function progressLine(io: CommandIo): {update: (progress: ScanProgress) => void; done: () => void} {
	const tty = (io.stderr as {isTTY?: boolean}).isTTY === true;
	let drawnAt = 0;
	let drawn = false;
	return {
		update({seen, expected}) {
			const now = Date.now();
			if (tty && now - drawnAt >= 250) {
				drawnAt = now;
				drawn = true;
				io.stderr.write(`\r\u001B[2Kread ${formatCount(seen)} of about ${formatCount(expected)} records`);
			}
		},
		done() {
			if (drawn) {
				io.stderr.write('\r\u001B[2K');
			}
		},
	};
}

function describeRecord(record: DeadLetterRecord): string {
	const pair = record.pair as {accessPackageId?: unknown; incompatibleAccessPackageId?: unknown; incompatibleGroupId?: unknown} | null;
	const target = typeof pair?.incompatibleGroupId === 'string' ? {incompatibleGroupId: pair.incompatibleGroupId} : typeof pair?.incompatibleAccessPackageId === 'string' ? {incompatibleAccessPackageId: pair.incompatibleAccessPackageId} : undefined;
	const subject =
		record.reason === 'invalid-message'
			? typeof record.messageBlob === 'string'
				? `message in blob ${printable(record.messageBlob, 200)}`
				: `message ${printable(JSON.stringify((record.message ?? '').slice(0, 60)))}`
			: Array.isArray(record.invalidPairs)
				? `${formatCount(record.invalidPairs.length)} invalid pairs, e.g. ${printable(JSON.stringify(record.invalidPairs[0]?.pair ?? null).slice(0, 100))}`
			: typeof pair?.accessPackageId === 'string' && target !== undefined
				? pairText({accessPackageId: pair.accessPackageId, ...target})
				: printable(JSON.stringify(record.pair).slice(0, 100));
	const status = [record.error.status, record.error.code].filter(value => value !== null).join(' ');
	const details = [
		record.action,
		`${status ? `${printable(status)}: ` : ''}${printable(record.error.message, 500)}`,
		`attempts ${record.attempts}`,
		record.correlationId ? `correlation ${printable(record.correlationId, 256)}` : undefined,
		record.deadLetteredAt,
	].filter(Boolean);
	return `  ${subject}  ${details.join('  |  ')}`;
}
