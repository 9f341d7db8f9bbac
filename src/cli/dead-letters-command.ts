// `sod-sync dead-letters list | redrive`: read the dead-letter queue grouped by reason, and send records back.

import type {DeadLetterReason, DeadLetterRecord} from '../dead-letter.js';
import {deadLetterReasons} from '../engine/retry-decision.js';
import {deadLetterIdentity, defaultRedriveReasons, listDeadLetters, redriveDeadLetters, type HeldMessage} from '../queue/dead-letter-queue.js';
import {printable} from '../untrusted-text.js';
import {rawMessageStoreFor} from '../worker/worker-runtime.js';
import {exitCodes, formatCount, parseCommandLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';
import {openAppStorage} from '../storage/app-storage.js';

const reasons: readonly DeadLetterReason[] = deadLetterReasons;

export const deadLettersHelp = `Usage: sod-sync dead-letters list [--json]
       sod-sync dead-letters redrive [--reason R]...

list     prints every record on the dead-letter queue, grouped by reason, with counts. Read-only: the records are
         received and made visible again unchanged (storage queues can only peek at 32).
redrive  sends the chosen records back to the pairs queue (attempt reset to 0) and removes each from the dead-letter
         queue only after the message carrying it was sent. Default reasons: ${defaultRedriveReasons.join(', ')}.
         invalid-pair and invalid-message records go back only when named (fix the producer first).

Options:
  --json                     list: one JSON array of the records
  --reason R                 redrive: a reason to send back (repeatable): ${reasons.join(', ')}
${settingFlagsHelp}

Exit codes: 0 done, 1 storage failure, 2 bad usage.`;

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
	if (subcommand === 'list') {
		if (values.reason) {
			throw new UsageError('--reason goes with redrive');
		}

		const held = await listDeadLetters(deadLetterQueue, encoding);
		io.stdout.write(values.json ? `${JSON.stringify(held.map(message => message.record ?? {unreadable: message.problem}), null, 2)}\n` : describeDeadLetters(held, settings.deadLetterQueueName));
		return exitCodes.ok;
	}

	const chosen = (values.reason ?? defaultRedriveReasons) as DeadLetterReason[];
	for (const reason of chosen) {
		if (!reasons.includes(reason)) {
			throw new UsageError(`--reason must be one of ${reasons.join(', ')}; got '${reason}'`);
		}
	}

	const result = await redriveDeadLetters({
		deadLetterQueue,
		sendToPairsQueue: async text => storage.pairs.send(text),
		encoding,
		reasons: chosen,
		rawMessages: rawMessageStoreFor(settings),
	});
	io.stdout.write(
		`redrove ${formatCount(result.redriven + result.resent)} records (${chosen.join(', ')}) to '${settings.queueName}' in ${formatCount(result.messagesSent)} messages; ${formatCount(result.left)} left on '${settings.deadLetterQueueName}'\n`,
	);
	return exitCodes.ok;
}

/** Grouped by reason, most frequent first, one line per record. */
export function describeDeadLetters(held: readonly HeldMessage[], queueName: string): string {
	const groups = new Map<string, string[]>();
	const copies = new Map<string, number>();
	for (const message of held) {
		if (message.record) {
			const identity = deadLetterIdentity(message.record);
			copies.set(identity, (copies.get(identity) ?? 0) + 1);
		}
	}

	const shown = new Set<string>();
	for (const message of held) {
		const key = message.record?.reason ?? 'unreadable';
		const identity = message.record ? deadLetterIdentity(message.record) : undefined;
		if (identity !== undefined && shown.has(identity)) {
			continue;
		}

		const lines = groups.get(key) ?? [];
		const times = identity === undefined ? 1 : copies.get(identity)!;
		lines.push(
			message.record
				? `${describeRecord(message.record)}${times > 1 ? `  (written ${times} times: its message was delivered again)` : ''}`
				: `  message ${message.messageId}: ${message.problem}`,
		);
		groups.set(key, lines);
		if (identity !== undefined) {
			shown.add(identity);
		}
	}

	const sections = [...groups.entries()]
		.sort(([, a], [, b]) => b.length - a.length)
		.map(([reason, lines]) => `${reason} (${formatCount(lines.length)})\n${lines.join('\n')}`);
	const distinct = [...groups.values()].reduce((sum, lines) => sum + lines.length, 0);
	return `${formatCount(distinct)} dead letters on '${queueName}'${distinct < held.length ? ` (${formatCount(held.length)} records)` : ''}\n${sections.length > 0 ? `\n${sections.join('\n\n')}\n` : ''}`;
}

function describeRecord(record: DeadLetterRecord): string {
	const pair = record.pair as {accessPackageId?: unknown; incompatibleAccessPackageId?: unknown} | null;
	const subject =
		record.reason === 'invalid-message'
			? typeof record.messageBlob === 'string'
				? `message in blob ${printable(record.messageBlob, 200)}`
				: `message ${printable(JSON.stringify((record.message ?? '').slice(0, 60)))}`
			: Array.isArray(record.invalidPairs)
				? `${formatCount(record.invalidPairs.length)} invalid pairs, e.g. ${printable(JSON.stringify(record.invalidPairs[0]?.pair ?? null).slice(0, 100))}`
			: typeof pair?.accessPackageId === 'string' && typeof pair.incompatibleAccessPackageId === 'string'
				? `${printable(pair.accessPackageId, 100)} -> ${printable(pair.incompatibleAccessPackageId, 100)}`
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
