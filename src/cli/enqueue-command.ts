// `sod-sync enqueue <file | ->`: validates a pair file whole, then packs its pairs into as few queue messages as fit.
// Both passes stream, so a file of millions of rows runs in constant memory (stdin is spooled to a temporary file).

import {randomBytes} from 'node:crypto';
import {createReadStream, createWriteStream} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {basename, join} from 'node:path';
import {pipeline} from 'node:stream/promises';
import {correlationIdProblem} from '../message/message.js';
import {linkActions, type LinkAction} from '../pair/pair.js';
import {formatFromPath, PairFileError, readPairRows, type PairFileFormat} from '../pair/pair-file.js';
import {exitCodes, formatCount, parseCommandLine, ProgressLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';
import {sendPairRows} from '../queue/send-pairs.js';
import {generatedCorrelationId, openAppStorage} from '../queue/app-storage.js';
import {ImportRecorder} from '../ledger/import-recorder.js';

export const enqueueHelp = `Usage: sod-sync enqueue <file | -> [options]

Reads pairs from a CSV file (a header naming accessPackageId and incompatibleAccessPackageId, incompatibleGroupId or
both: each row fills one of the two, a package rule or a group rule; other columns ignored; an optional symmetric
column, for package rules) or JSON Lines, validates every row, then enqueues them on the pairs queue packed into as
few messages as fit under the 64 KiB limit. Nothing is enqueued if any row is invalid, unless --skip-invalid.

Options:
  --format csv|jsonl         input format (default: from the file name; otherwise sniffed)
  --skip-invalid             enqueue the valid rows and report the others
  --symmetric                link each package rule in both directions (a group rule is then refused)
  --action add|remove        default add
  --correlation-id ID        names the import: carried into every log line and dead letter, and what
                             \`sod-sync status\`, \`changes\` and \`undo\` take (default: generated)
${settingFlagsHelp}

Exit codes: 0 enqueued, 1 storage failure, 2 invalid input (nothing enqueued).`;


export async function enqueueCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {
		format: {type: 'string'},
		'skip-invalid': {type: 'boolean'},
		symmetric: {type: 'boolean'},
		action: {type: 'string'},
		'correlation-id': {type: 'string'},
	});
	if (values.help) {
		io.stdout.write(`${enqueueHelp}\n`);
		return exitCodes.ok;
	}

	const [source, ...extra] = positionals;
	if (source === undefined || extra.length > 0) {
		throw new UsageError('enqueue takes one file name, or - for standard input');
	}

	const format = values.format;
	if (format !== undefined && format !== 'csv' && format !== 'jsonl') {
		throw new UsageError(`--format must be csv or jsonl, got '${format}'`);
	}

	const action = (values.action ?? 'add') as LinkAction;
	if (!linkActions.includes(action)) {
		throw new UsageError(`--action must be add or remove, got '${values.action}'`);
	}

	const {settings} = settingsFrom(values, io.environment);
	const correlationProblem = values['correlation-id'] === undefined ? undefined : correlationIdProblem(values['correlation-id']);
	if (correlationProblem) {
		// The worker would dead-letter every message carrying it: refuse it here, before anything is sent.
		throw new UsageError(`--correlation-id ${correlationProblem}`);
	}

	const correlationId = values['correlation-id'] ?? generatedCorrelationId('enqueue', new Date(), randomBytes(3).toString('hex'));
	const spool = source === '-' ? await spoolStandardInput(io.stdin) : undefined;
	try {
		const path = spool?.path ?? source;
		const resolvedFormat: PairFileFormat | undefined = format ?? formatFromPath(path);
		const progress = new ProgressLine(io.stderr);

		// Pass 1: validate everything before anything is sent.
		let valid = 0;
		let invalid = 0;
		try {
			for await (const row of readPairRows(createReadStream(path), resolvedFormat, values.symmetric === true)) {
				if (row.kind === 'pair') {
					valid++;
				} else {
					invalid++;
					progress.clear();
					io.stderr.write(`${source === '-' ? 'stdin' : source}: line ${row.line}: ${row.reason}\n`);
				}

				progress.update(`validating: ${formatCount(valid + invalid)} rows`);
			}
		} catch (error) {
			progress.clear();
			if (error instanceof PairFileError) {
				io.stderr.write(`${source === '-' ? 'stdin' : source}: ${error.message}; nothing enqueued\n`);
				return exitCodes.invalidInput;
			}

			if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
				throw new UsageError(`no such file: ${source}`);
			}

			throw error;
		}

		progress.clear();
		if (invalid > 0 && !values['skip-invalid']) {
			io.stderr.write(`${formatCount(invalid)} invalid rows; nothing enqueued (--skip-invalid enqueues the ${formatCount(valid)} valid ones)\n`);
			return exitCodes.invalidInput;
		}

		// Pass 2: record the import in the ledger, then pack and send.
		const warn = (line: string) => {
			progress.clear();
			io.stderr.write(`${line}\n`);
		};

		const recorder = await ImportRecorder.start(settings, {correlationId, source: source === '-' ? 'stdin' : basename(source), invalidRows: invalid}, warn);
		const {pairs: queue, encoding} = openAppStorage(settings);
		const {pairs, messages, duplicates, sentPairs, failure} = await sendPairRows(
			readPairRows(createReadStream(path), resolvedFormat, values.symmetric === true),
			queue,
			{action, symmetric: values.symmetric ? true : undefined, correlationId, attempt: 0},
			encoding,
			{
				signal: io.signal,
				onProgress: sent => progress.update(`enqueuing: ${formatCount(sent.pairs)} pairs in ${formatCount(sent.messages)} messages`),
			},
		);
		progress.clear();
		const interrupted = failure !== undefined || io.signal.aborted;
		await recorder.finish({sentPairs, duplicates, interrupted});
		const skipped = [
			invalid > 0 ? `; ${formatCount(invalid)} invalid rows skipped` : '',
			duplicates > 0 ? `; ${formatCount(duplicates)} repeated pairs sent once` : '',
		].join('');
		if (interrupted) {
			const why = failure === undefined ? 'interrupted' : (failure as Error).message;
			io.stderr.write(
				`enqueue stopped (${why}) after ${formatCount(messages)} messages; re-running the whole file is safe (adding a link twice is harmless)\n`,
			);
			return exitCodes.error;
		}

		io.stdout.write(
			`enqueued ${formatCount(pairs)} pairs${values.symmetric ? ' (each row both ways)' : ''} in ${formatCount(messages)} messages to '${settings.queueName}', correlation ${correlationId}${skipped}\n`,
		);
		return exitCodes.ok;
	} finally {
		if (spool) {
			await rm(spool.directory, {recursive: true, force: true});
		}
	}
}

async function spoolStandardInput(stdin: NodeJS.ReadableStream): Promise<{directory: string; path: string}> {
	const directory = await mkdtemp(join(tmpdir(), 'sod-sync-'));
	const path = join(directory, 'stdin');
	await pipeline(stdin, createWriteStream(path));
	return {directory, path};
}
