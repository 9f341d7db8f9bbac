// `sod-sync status`, `changes` and `undo`: an import watched, accounted for and audited from the import ledger.

import {setTimeout as sleep} from 'node:timers/promises';
import type {Settings} from '../config/settings.js';
import {importChanges, importStatus, outcomeNames, type ImportStatus, type Settlement} from '../ledger/ledger.js';
import type {LedgerStore} from '../ledger/ledger-store.js';
import {ImportRecorder} from '../ledger/import-recorder.js';
import {openLedgerStore} from '../ledger/open-ledger.js';
import {correlationIdProblem} from '../message/message.js';
import {pairFields, type Pair} from '../pair/pair.js';
import {generatedCorrelationId, openAppStorage} from '../queue/app-storage.js';
import {sendPairs} from '../queue/send-pairs.js';
import {printable} from '../text/untrusted-text.js';
import {exitCodes, formatCount, parseCommandLine, ProgressLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';

export const statusHelp = `Usage: sod-sync status [<correlationId>] [--json] [--watch] [options]

What became of an import, from the import ledger: pairs enqueued, each outcome, dead letters by reason, pairs still
pending, the rate over the last minute and an ETA. Without a correlation id: the recent imports, one line each.

  linked / removed            links this import added / removed (each once; \`sod-sync changes\` lists them)
  already-linked / -absent    pairs that were already so before the import (or repeated within it)
  dead-letter                 pairs in the dead-letter queue, by reason (a redriven pair counts until it settles again)
  requeued                    pairs back in the queue to be tried again (throttling, a deadline, a failed attempt)
  pending                     pairs no worker has taken yet

Options:
  --json                     one JSON object (with --watch: one per refresh, a line each)
  --watch                    refresh until the import is done (a progress bar on a terminal)
  --interval SECONDS         between refreshes with --watch (default 2)
${settingFlagsHelp}

Exit codes: 0 shown, 1 error (the ledger off or unreachable), 2 bad usage, 3 no such import.`;

export const changesHelp = `Usage: sod-sync changes <correlationId> [--format csv|jsonl] [--change linked|removed]

The links an import added or removed, each once, from the import ledger: the audit trail. Printed in the form
\`sod-sync enqueue\` reads (CSV with a header, or JSON Lines), with a column \`change\`: linked or removed. Links that were
there before the import (already-linked) are not changes and are not listed.

Options:
  --format csv|jsonl         default csv
  --change linked|removed    only the links added, or only those removed
${settingFlagsHelp}

Exit codes: 0 listed, 1 error, 2 bad usage, 3 no such import.`;

export const undoHelp = `Usage: sod-sync undo <correlationId> [--dry-run] [--correlation-id ID]

Enqueues the inverse of what an import changed: removes the links it added and adds back the links it removed. Links
that were there before the import are never touched. The undo is an import of its own, under a new correlation id that
names the original (follow it with \`sod-sync status\`). An import still running is refused: undo it once it is done.

Options:
  --dry-run                  print what would be enqueued (as \`changes\` prints it, with the undo's action), send nothing
  --correlation-id ID        the undo's correlation id (default: undo-<time>-<original>)
${settingFlagsHelp}

Exit codes: 0 enqueued (or nothing to undo), 1 error, 2 bad usage, 3 no such import or not done.`;

const noSuchImport = 3;

/** The ledger's store, or a clear error when the ledger is off. */
function ledgerStore(settings: Settings, io: CommandIo): LedgerStore {
	const store = openLedgerStore(settings, line => io.stderr.write(`${line}\n`));
	if (!store) {
		throw new Error(
			settings.ledgerRetentionDays === 0 ? 'the import ledger is off (SOD_LEDGER_RETENTION_DAYS=0): nothing was recorded' : 'the import ledger cannot be opened (see above)',
		);
	}

	return store;
}

function correlationArgument(positionals: string[], command: string): string {
	const [correlationId, ...extra] = positionals;
	if (correlationId === undefined || extra.length > 0) {
		throw new UsageError(`${command} takes one correlation id`);
	}

	const problem = correlationIdProblem(correlationId);
	if (problem) {
		throw new UsageError(`the correlation id ${problem}`);
	}

	return correlationId;
}

/** An import's record and settlements, read once, and its status added up from them; `found` false when it has neither. */
export async function readImportLedger(
	store: LedgerStore,
	correlationId: string,
): Promise<{found: boolean; settlements: Settlement[]; status: ImportStatus}> {
	const [record, settlements] = await Promise.all([store.readImport(correlationId), store.readSettlements(correlationId)]);
	return {found: record !== undefined || settlements.length > 0, settlements, status: importStatus(correlationId, record, settlements, new Date())};
}

export async function statusCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {json: {type: 'boolean'}, watch: {type: 'boolean'}, interval: {type: 'string'}});
	if (values.help) {
		io.stdout.write(`${statusHelp}\n`);
		return exitCodes.ok;
	}

	const intervalSeconds = values.interval === undefined ? 2 : Number(values.interval);
	if (!Number.isFinite(intervalSeconds) || intervalSeconds < 0.2 || intervalSeconds > 3600) {
		throw new UsageError(`--interval must be a number of seconds from 0.2 to 3600, got '${values.interval}'`);
	}

	const {settings} = settingsFrom(values, io.environment);
	const store = ledgerStore(settings, io);
	if (positionals.length === 0) {
		if (values.watch) {
			throw new UsageError('--watch needs a correlation id');
		}

		return listImports(store, io, values.json ?? false);
	}

	const correlationId = correlationArgument(positionals, 'status');
	const progress = new ProgressLine(io.stderr);
	for (;;) {
		// eslint-disable-next-line no-await-in-loop
		const {found, status} = await readImportLedger(store, correlationId);
		if (!found) {
			progress.clear();
			io.stderr.write(`sod-sync status: no import '${printable(correlationId, 256)}' in the ledger (sod-sync status lists the recent ones)\n`);
			return noSuchImport;
		}

		const finalView = !values.watch || status.done || io.signal.aborted;
		if (values.json) {
			io.stdout.write(`${JSON.stringify(statusJson(status))}\n`);
		} else if (finalView) {
			progress.clear();
			// eslint-disable-next-line no-await-in-loop
			io.stdout.write(`${describeStatus(status, await queueNote(settings, status))}\n`);
		} else if (io.stderr.isTTY) {
			progress.update(progressBar(status), true);
		} else {
			io.stdout.write(`${progressLine(status)}\n`);
		}

		if (finalView) {
			return exitCodes.ok;
		}

		// eslint-disable-next-line no-await-in-loop
		await sleep(intervalSeconds * 1000, undefined, {signal: io.signal}).catch(() => undefined);
	}
}

async function listImports(store: LedgerStore, io: CommandIo, json: boolean): Promise<number> {
	const records = (await store.listImports()).slice(0, 50);
	const statuses = await Promise.all(records.map(async record => importStatus(record.correlationId, record, await store.readSettlements(record.correlationId), new Date())));
	if (json) {
		io.stdout.write(`${JSON.stringify(statuses.map(statusJson))}\n`);
		return exitCodes.ok;
	}

	if (statuses.length === 0) {
		io.stdout.write('no imports in the ledger\n');
		return exitCodes.ok;
	}

	for (const status of statuses) {
		const record = status.import!;
		io.stdout.write(
			`${record.startedAt.toISOString().slice(0, 19)}Z  ${printable(status.correlationId, 80).padEnd(36)}  ${stateWord(status).padEnd(11)}  ${formatCount(settledOf(status))}/${formatCount(status.pairs ?? 0)} settled  +${formatCount(status.changed.linked)} -${formatCount(status.changed.removed)}  dead-letter ${formatCount(status.outcomes['dead-letter'])}  ${printable(record.source, 60)}\n`,
		);
	}

	return exitCodes.ok;
}

function stateWord(status: ImportStatus): string {
	if (status.done) {
		return 'done';
	}

	return status.import?.state === 'enqueuing' ? 'enqueuing' : status.import?.state === 'interrupted' ? 'interrupted' : 'running';
}

/** What `status --json` prints: the names the README documents, stable for scripts. */
export function statusJson(status: ImportStatus): Record<string, unknown> {
	return {
		correlationId: status.correlationId,
		source: status.import?.source ?? null,
		state: stateWord(status),
		startedAt: status.import?.startedAt.toISOString() ?? null,
		undoOf: status.import?.undoOf ?? null,
		pairs: status.pairs ?? null,
		invalidRows: status.import?.invalidRows ?? null,
		duplicateRows: status.import?.duplicateRows ?? null,
		outcomes: status.outcomes,
		deadLetters: status.deadLetters,
		redriven: status.redriven,
		pending: status.pending ?? null,
		done: status.done,
		ratePerSecond: Math.round(status.ratePerSecond * 10) / 10,
		etaSeconds: status.etaSeconds ?? null,
		changed: status.changed,
		withoutPreImage: status.withoutPreImage,
		messages: status.messages,
		lastSettledAt: status.lastSettledAt?.toISOString() ?? null,
	};
}

function settledOf(status: ImportStatus): number {
	return (status.pairs ?? 0) - (status.pending ?? 0) - status.outcomes.requeued;
}

function eta(status: ImportStatus): string {
	if (status.etaSeconds === undefined) {
		return status.done ? 'done' : 'no progress in the last minute';
	}

	const seconds = status.etaSeconds;
	return seconds < 120 ? `about ${seconds} s left` : seconds < 7200 ? `about ${Math.round(seconds / 60)} min left` : `about ${(seconds / 3600).toFixed(1)} h left`;
}

function progressBar(status: ImportStatus): string {
	const total = Math.max(1, status.pairs ?? 0);
	const share = Math.min(1, Math.max(0, settledOf(status) / total));
	const width = 30;
	const filled = Math.round(share * width);
	return `${printable(status.correlationId, 40)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(share * 100)}% ${formatCount(settledOf(status))}/${formatCount(status.pairs ?? 0)} · ${status.ratePerSecond.toFixed(1)} pairs/s · ${eta(status)}`;
}

function progressLine(status: ImportStatus): string {
	return `${printable(status.correlationId, 80)}: ${formatCount(settledOf(status))} of ${formatCount(status.pairs ?? 0)} settled, ${formatCount((status.pending ?? 0) + status.outcomes.requeued)} left, ${status.ratePerSecond.toFixed(1)} pairs/s, ${eta(status)}`;
}

/**
 * When pairs are left but the pairs queue (visible and invisible) and its poison queue are empty, no worker can settle
 * them: their settlements were not written (the ledger was unreachable and the worker stopped before it was back).
 */
async function queueNote(settings: Settings, status: ImportStatus): Promise<string | undefined> {
	const left = (status.pending ?? 0) + status.outcomes.requeued;
	if (left <= 0 || status.import?.state !== 'enqueued') {
		return undefined;
	}

	try {
		const storage = openAppStorage(settings);
		const [queue, poison] = await Promise.all([
			storage.queue(settings.queueName).getProperties(),
			storage.queue(`${settings.queueName}-poison`).getProperties().catch(() => ({approximateMessagesCount: 0})),
		]);
		if ((queue.approximateMessagesCount ?? 0) > 0) {
			return undefined;
		}

		return (poison.approximateMessagesCount ?? 0) > 0
			? `the queue '${settings.queueName}' is empty and its poison queue holds ${formatCount(poison.approximateMessagesCount ?? 0)} messages: the ${formatCount(left)} pairs left may be there`
			: `the queue '${settings.queueName}' is empty, yet ${formatCount(left)} pairs have no record: a worker settled them while the ledger could not be written and stopped before it was back (its log says "sod-sync ledger")`;
	} catch {
		return undefined;
	}
}

export function describeStatus(status: ImportStatus, note?: string): string {
	const record = status.import;
	const lines: string[] = [];
	const what = record
		? `${record.undoOf === undefined ? 'import' : `undo of ${printable(record.undoOf, 80)}`} from ${printable(record.source, 80)}, started ${record.startedAt.toISOString().slice(0, 19)}Z`
		: 'no import record (sent by a producer other than sod-sync enqueue): the pairs it holds are not known';
	lines.push(`${printable(status.correlationId, 256)}: ${stateWord(status)}; ${what}`);
	const row = (name: string, value: number | undefined, note = '') =>
		lines.push(`  ${name.padEnd(16)}${(value === undefined ? '-' : formatCount(value)).padStart(10)}${note ? `  ${note}` : ''}`);
	const extras: string[] = [];
	if (record?.invalidRows) {
		extras.push(`${formatCount(record.invalidRows)} invalid rows skipped`);
	}

	if (record?.duplicateRows) {
		extras.push(`${formatCount(record.duplicateRows)} repeated pairs sent once`);
	}

	row('pairs', status.pairs, extras.join(', '));
	for (const outcome of outcomeNames) {
		const count = status.outcomes[outcome];
		if (outcome === 'dead-letter') {
			const reasons = Object.entries(status.deadLetters).map(([reason, n]) => `${reason} ${formatCount(n)}`);
			row(outcome, count, [reasons.join(', '), status.redriven > 0 ? `${formatCount(status.redriven)} redriven` : ''].filter(Boolean).join('; '));
		} else if (outcome === 'requeued') {
			row(outcome, count, count > 0 ? 'back in the queue, to be tried again' : '');
		} else {
			row(outcome, count);
		}
	}

	row('pending', status.pending, status.pending ? 'not taken by a worker yet' : '');
	lines.push(`  ${'rate'.padEnd(16)}${status.ratePerSecond.toFixed(1).padStart(10)}  pairs/s ${status.done ? 'over the run' : `over the last minute; ${eta(status)}`}`);
	lines.push(
		`  changed: ${formatCount(status.changed.linked)} links added, ${formatCount(status.changed.removed)} removed (sod-sync changes ${printable(status.correlationId, 80)})`,
	);
	if (status.withoutPreImage > 0) {
		lines.push(
			`  ${formatCount(status.withoutPreImage)} pairs were counted without their package's earlier links (the read failed): their linked/already-linked split is as Graph answered`,
		);
	}

	if (note) {
		lines.push(`  note: ${note}`);
	}

	return lines.join('\n');
}

export async function changesCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {format: {type: 'string'}, change: {type: 'string'}});
	if (values.help) {
		io.stdout.write(`${changesHelp}\n`);
		return exitCodes.ok;
	}

	const format = values.format ?? 'csv';
	if (format !== 'csv' && format !== 'jsonl') {
		throw new UsageError(`--format must be csv or jsonl, got '${format}'`);
	}

	if (values.change !== undefined && values.change !== 'linked' && values.change !== 'removed') {
		throw new UsageError(`--change must be linked or removed, got '${values.change}'`);
	}

	const correlationId = correlationArgument(positionals, 'changes');
	const {settings} = settingsFrom(values, io.environment);
	const store = ledgerStore(settings, io);
	const {found, settlements} = await readImportLedger(store, correlationId);
	if (!found) {
		io.stderr.write(`sod-sync changes: no import '${printable(correlationId, 256)}' in the ledger\n`);
		return noSuchImport;
	}

	const changes = importChanges(settlements);
	const rows = [
		...(values.change === 'removed' ? [] : changes.linked.map(pair => ({pair, change: 'linked'}))),
		...(values.change === 'linked' ? [] : changes.removed.map(pair => ({pair, change: 'removed'}))),
	];
	io.stdout.write(formatChanges(rows, format));
	return exitCodes.ok;
}

/**
 * Changes in the form `enqueue` reads: CSV `accessPackageId,incompatibleAccessPackageId,<column>` (with an
 * `incompatibleGroupId` column before the last when a group rule changed) or JSON Lines of the pair's own fields.
 */
function formatChanges(rows: ReadonlyArray<{pair: Pair; change: string}>, format: 'csv' | 'jsonl', column = 'change'): string {
	if (format === 'jsonl') {
		return rows.map(({pair, change}) => `${JSON.stringify({...pairFields(pair), [column]: change})}\n`).join('');
	}

	const groups = rows.some(({pair}) => pair.incompatibleGroupId !== undefined);
	const line = ({pair, change}: {pair: Pair; change: string}) =>
		`${[pair.accessPackageId, pair.incompatibleAccessPackageId ?? '', ...(groups ? [pair.incompatibleGroupId ?? ''] : []), change].join(',')}\n`;
	return `accessPackageId,incompatibleAccessPackageId,${groups ? 'incompatibleGroupId,' : ''}${column}\n${rows.map(line).join('')}`;
}

export async function undoCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {'dry-run': {type: 'boolean'}, 'correlation-id': {type: 'string'}});
	if (values.help) {
		io.stdout.write(`${undoHelp}\n`);
		return exitCodes.ok;
	}

	const original = correlationArgument(positionals, 'undo');
	const given = values['correlation-id'];
	if (given !== undefined && correlationIdProblem(given)) {
		throw new UsageError(`--correlation-id ${correlationIdProblem(given)}`);
	}

	const undoId = given ?? generatedCorrelationId('undo', new Date(), original).slice(0, 256);
	if (undoId === original) {
		throw new UsageError('the undo needs a correlation id of its own');
	}

	const {settings} = settingsFrom(values, io.environment);
	const store = ledgerStore(settings, io);
	const {found, settlements, status} = await readImportLedger(store, original);
	if (!found) {
		io.stderr.write(`sod-sync undo: no import '${printable(original, 256)}' in the ledger\n`);
		return noSuchImport;
	}

	if (!status.done) {
		io.stderr.write(
			`sod-sync undo: '${printable(original, 256)}' is not done (${formatCount((status.pending ?? 0) + status.outcomes.requeued)} pairs left${status.import ? '' : ', and no import record says how many it holds'}); undo it once it is (sod-sync status ${printable(original, 256)} --watch)\n`,
		);
		return noSuchImport;
	}

	const changes = importChanges(settlements);
	const toRemove = changes.linked;
	const toAdd = changes.removed;
	if (values['dry-run']) {
		io.stdout.write(
			formatChanges([...toRemove.map(pair => ({pair, change: 'remove'})), ...toAdd.map(pair => ({pair, change: 'add'}))], 'csv', 'action'),
		);
		io.stderr.write(`undo of ${printable(original, 256)} (dry run): ${formatCount(toRemove.length)} links to remove, ${formatCount(toAdd.length)} to add back; nothing sent\n`);
		return exitCodes.ok;
	}

	if (toRemove.length + toAdd.length === 0) {
		io.stdout.write(`undo of ${printable(original, 256)}: it changed nothing; nothing to enqueue\n`);
		return exitCodes.ok;
	}

	const warn = (line: string) => io.stderr.write(`${line}\n`);
	const recorder = await ImportRecorder.start(settings, {correlationId: undoId, source: `undo of ${original}`, invalidRows: 0, undoOf: original}, warn);
	const {pairs: queue, encoding} = openAppStorage(settings);
	let messages = 0;
	let sentPairs = 0;
	try {
		for (const [pairs, action] of [
			[toRemove, 'remove'],
			[toAdd, 'add'],
		] as const) {
			if (pairs.length > 0) {
				// eslint-disable-next-line no-await-in-loop
				messages += await sendPairs(queue, pairs, {action, correlationId: undoId, attempt: 0}, encoding);
				sentPairs += pairs.length;
			}
		}
	} catch (error) {
		await recorder.finish({sentPairs, duplicates: 0, interrupted: true});
		throw new Error(`undo stopped after ${formatCount(messages)} messages (${(error as Error).message}); running it again under the same --correlation-id ${undoId} is safe`);
	}

	await recorder.finish({sentPairs, duplicates: 0, interrupted: false});
	io.stdout.write(
		`undo of ${printable(original, 256)}: ${formatCount(toRemove.length)} links to remove and ${formatCount(toAdd.length)} to add back, enqueued in ${formatCount(messages)} messages to '${settings.queueName}', correlation ${undoId} (sod-sync status ${undoId} --watch)\n`,
	);
	return exitCodes.ok;
}
