// `sod-sync export`: the tenant's rules as a manifest that `reconcile` and `enqueue` read.

import {readFile, rename, writeFile} from 'node:fs/promises';
import {exportRules, formatExport, type ExportScope} from '../compliance/export.js';
import {readConcurrencyFor} from '../compliance/reconcile.js';
import {normalizeGuid, quote} from '../pair/pair.js';
import {formatFromPath} from '../pair/pair-file.js';
import {printable} from '../text/untrusted-text.js';
import {createLinkEngine, createTokenSource} from '../worker/worker-runtime.js';
import {exitCodes, formatCount, parseCommandLine, ProgressLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';

export const exportHelp = `Usage: sod-sync export [--scope all|catalog:<id>|packages:<file>] [--format csv|jsonl] [--output FILE]

Reads the incompatible packages and incompatible groups of every access package in scope through Graph and writes
them as a manifest: one rule per link, a link both ways written once with symmetric true, a group link as a row with
incompatibleGroupId. The packages the scope links to are read too, so that the manifest holds every link among the
packages it names: \`sod-sync reconcile\` of the export finds no drift, and \`reconcile --apply --prune\` of it later
restores the tenant to what it was. Display names are written beside the ids for a reviewer (CSV columns
accessPackageName, incompatibleAccessPackageName and incompatibleGroupName, JSON fields of the same names); the
readers ignore them: the ids are the key.

Nothing is written unless every package could be read (a partial export, enforced with --prune, would remove links).

Options:
  --scope all                every access package in the tenant (default)
  --scope catalog:<id>       the access packages of one catalog
  --scope packages:<file>    the packages a file lists, one id per line (blank lines and # comments skipped)
  --format csv|jsonl         default: from the output file's extension, else csv
  --output FILE              write here (replaced whole, only when complete); default: standard output
${settingFlagsHelp}

Exit codes: 0 written, 1 error (a package could not be read: nothing written), 2 bad usage or an invalid package list.`;

export async function exportCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {
		scope: {type: 'string'},
		format: {type: 'string'},
		output: {type: 'string'},
	});
	if (values.help) {
		io.stdout.write(`${exportHelp}\n`);
		return exitCodes.ok;
	}

	if (positionals.length > 0) {
		throw new UsageError(`export takes no file argument (--output names where to write), got '${positionals[0]}'`);
	}

	const format = values.format ?? (values.output === undefined ? undefined : formatFromPath(values.output)) ?? 'csv';
	if (format !== 'csv' && format !== 'jsonl') {
		throw new UsageError(`--format must be csv or jsonl, got '${format}'`);
	}

	const scope = await readScope(values.scope ?? 'all', io);
	if (typeof scope === 'number') {
		return scope;
	}

	const {settings, environment} = settingsFrom(values, io.environment);
	const engine = createLinkEngine(settings, createTokenSource(environment, settings));
	const progress = new ProgressLine(io.stderr);
	const result = await exportRules({
		engine,
		scope,
		deadline: Date.now() + settings.invocationBudgetMs,
		signal: io.signal,
		readConcurrency: readConcurrencyFor(settings),
		onProgress: (read, toRead) => progress.update(`export: ${formatCount(read)} of ${formatCount(toRead)} packages read`),
	});
	progress.clear();
	if (result.readFailures.length > 0) {
		for (const {accessPackageId, kind, failure} of result.readFailures) {
			io.stderr.write(`could not read ${accessPackageId}'s incompatible ${kind === 'group' ? 'groups' : 'packages'}: ${[failure.status, failure.code === undefined ? undefined : printable(failure.code, 100), printable(failure.message, 500)].filter(Boolean).join(' ')}\n`);
		}

		io.stderr.write(`${formatCount(result.readFailures.length)} lists could not be read; nothing was written\n`);
		return exitCodes.error;
	}

	const text = [...formatExport(result.rules, result.names, format)].join('');
	if (values.output === undefined) {
		io.stdout.write(text);
	} else {
		// Whole or not at all: a reader never sees half a manifest.
		const partial = `${values.output}.partial`;
		await writeFile(partial, text);
		await rename(partial, values.output);
	}

	const symmetric = result.rules.filter(rule => rule.symmetric).length;
	io.stderr.write(
		`export: ${formatCount(result.scope.length)} packages in scope, ${formatCount(result.rules.length)} rules (${formatCount(symmetric)} symmetric) from ${formatCount(result.links)} links${result.groupLinks > 0 ? ` and ${formatCount(result.groupLinks)} group links` : ''}${values.output === undefined ? '' : `, written to ${values.output}`}\n`,
	);
	return exitCodes.ok;
}

async function readScope(text: string, io: CommandIo): Promise<ExportScope | number> {
	if (text === 'all') {
		return {kind: 'all'};
	}

	if (text.startsWith('catalog:')) {
		const catalogId = normalizeGuid(text.slice('catalog:'.length));
		if (!catalogId) {
			throw new UsageError(`--scope catalog:<id> needs a catalog id (a GUID), got ${quote(text.slice('catalog:'.length))}`);
		}

		return {kind: 'catalog', catalogId};
	}

	if (text.startsWith('packages:')) {
		const path = text.slice('packages:'.length);
		let content: string;
		try {
			content = await readFile(path, 'utf8');
		} catch (error) {
			if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
				throw new UsageError(`no such file: ${path}`);
			}

			throw error;
		}

		const ids: string[] = [];
		const problems: string[] = [];
		for (const [index, raw] of content.split(/\r?\n/).entries()) {
			const line = raw.replace(/#.*$/, '').trim();
			if (line === '') {
				continue;
			}

			const id = normalizeGuid(line);
			if (id) {
				ids.push(id);
			} else {
				problems.push(`${path}: line ${index + 1}: ${quote(line)} is not an access package id (a GUID)`);
			}
		}

		if (problems.length > 0) {
			io.stderr.write(`${problems.join('\n')}\n${formatCount(problems.length)} invalid lines; nothing was done\n`);
			return exitCodes.invalidInput;
		}

		return {kind: 'packages', ids};
	}

	throw new UsageError(`--scope must be all, catalog:<id> or packages:<file>, got ${quote(text)}`);
}
