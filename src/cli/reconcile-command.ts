// `sod-sync reconcile <manifest>` and `sod-sync violations <manifest>`: compliance against a desired state.

import {createReadStream} from 'node:fs';
import {basename} from 'node:path';
import {desiredLinks, ManifestTooLargeError, maximumManifestRows, readManifest, type Manifest, type ManifestSet} from '../compliance/manifest.js';
import {hasDrift, readConcurrencyFor, reconcile, type ReconcileReport} from '../compliance/reconcile.js';
import {findViolations} from '../compliance/violations.js';
import type {GraphFailure} from '../graph/graph-failure.js';
import {pairText, type Pair} from '../pair/pair.js';
import {ImportRecorder, RecordedEnqueue} from '../ledger/import-recorder.js';
import {printable} from '../text/untrusted-text.js';
import {formatFromPath} from '../pair/pair-file.js';
import {sendPairs} from '../queue/send-pairs.js';
import {createLinkEngine, createTokenSource} from '../worker/worker-runtime.js';
import {exitCodes, formatCount, parseCommandLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';
import {generatedCorrelationId, openAppStorage} from '../queue/app-storage.js';

const manifestHelp = `The manifest: CSV with a header naming accessPackageId and incompatibleAccessPackageId, incompatibleGroupId or
both (each row a package rule or a group rule; other columns ignored; an optional symmetric column of true/false for
package rules), or JSON Lines of the same fields (sod-sync export writes one). A set of mutually exclusive packages is
every link between them: in JSON Lines {"set": [A, B, C], "name": "..."}; in CSV a set column, one row per member
(accessPackageId the member, the other columns empty). Its scope is the packages it names, and the groups it names:
no other package is read or written unless --scope all, and a link to a group it does not name is never touched. At most
${maximumManifestRows.toLocaleString('en-US')} rows (and links, sets expanded).`;

export const reconcileHelp = `Usage: sod-sync reconcile <manifest> [--apply] [--prune] [--scope named|all] [--json]

Reads the incompatible packages (and, when the manifest names a group, the incompatible groups) of every package in
scope through Graph, compares them with the manifest and prints the drift: links missing, and links from an in-scope
package to an in-scope package or group that no rule asks for (extra). Links to packages or groups outside the scope
are listed but never touched.

${manifestHelp}

Options:
  --apply                    enqueue the missing links as add messages (the worker applies them, with dead letters)
  --prune                    with --apply, also enqueue the extra links as remove messages
  --scope named|all          named: the manifest's packages (default); all: every package in the tenant
  --json                     the report as JSON
${settingFlagsHelp}

Exit codes: 0 no drift, 3 drift, 1 error (including link lists that could not be read), 2 invalid manifest.`;

export const violationsHelp = `Usage: sod-sync violations <manifest> [--json]

For each rule, the users who already hold both sides (a new incompatibility does not remove existing access): for a
package rule, from Graph's assignments/additionalAccess, with both of their assignments; for a group rule, the
package's delivered assignments joined with the group's members, nested groups included (reading members needs the
application permission GroupMember.Read.All: sod-sync grant <identity> --group-members).

${manifestHelp}

Options:
  --json                     the report as JSON
${settingFlagsHelp}

Exit codes: 0 none found, 3 violations found, 1 error, 2 invalid manifest.`;

async function loadManifest(path: string | undefined, io: CommandIo): Promise<Manifest | number> {
	if (path === undefined) {
		throw new UsageError('name the manifest file');
	}

	let manifest: Manifest;
	try {
		manifest = await readManifest(createReadStream(path), formatFromPath(path));
	} catch (error) {
		if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
			throw new UsageError(`no such file: ${path}`);
		}

		if (error instanceof ManifestTooLargeError) {
			io.stderr.write(`${path}: ${error.message}; nothing was done\n`);
			return exitCodes.invalidInput;
		}

		throw error;
	}

	if (manifest.errors.length > 0) {
		for (const error of manifest.errors) {
			io.stderr.write(`${path}: line ${error.line}: ${error.error}\n`);
		}

		io.stderr.write(`${manifest.errors.length} invalid rows; nothing was done\n`);
		return exitCodes.invalidInput;
	}

	return manifest;
}

export async function reconcileCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {
		apply: {type: 'boolean'},
		prune: {type: 'boolean'},
		scope: {type: 'string'},
		json: {type: 'boolean'},
	});
	if (values.help) {
		io.stdout.write(`${reconcileHelp}\n`);
		return exitCodes.ok;
	}

	if (values.prune && !values.apply) {
		throw new UsageError('--prune goes with --apply');
	}

	const scope = values.scope ?? 'named';
	if (scope !== 'named' && scope !== 'all') {
		throw new UsageError(`--scope must be named or all, got '${scope}'`);
	}

	if (positionals.length > 1) {
		throw new UsageError('reconcile takes one manifest');
	}

	const manifest = await loadManifest(positionals[0], io);
	if (typeof manifest === 'number') {
		return manifest;
	}

	const {settings, engine} = engineFrom(values, io);
	const storage = openAppStorage(settings);
	const correlationId = generatedCorrelationId('reconcile');
	// What --apply enqueues is an import like any other: `sod-sync status <correlation>` follows it.
	const recorded = new RecordedEnqueue(
		async () => ImportRecorder.start(settings, {correlationId, source: `reconcile of ${basename(positionals[0]!)}`, invalidRows: 0}, line => io.stderr.write(`${line}\n`)),
		async (pairs, action) => sendPairs(storage.pairs, pairs, {action, correlationId, attempt: 0}, storage.encoding),
	);
	let report: ReconcileReport;
	try {
		report = await reconcile({
			engine,
			rules: manifest.rules,
			sets: manifest.sets,
			scope,
			apply: values.apply ?? false,
			prune: values.prune ?? false,
			enqueue: recorded.enqueue,
			deadline: Date.now() + settings.invocationBudgetMs,
			signal: io.signal,
			readConcurrency: readConcurrencyFor(settings),
		});
	} catch (error) {
		await recorded.finish(true);
		throw error;
	}

	await recorded.finish(false);
	io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : describeReport(report, values.apply ?? false, correlationId, manifest.sets));
	if (report.readFailures.length > 0) {
		return exitCodes.error;
	}

	return hasDrift(report) ? exitCodes.drift : exitCodes.ok;
}

/** A read failure in words; its code and message are Graph's text, escaped. */
function describeFailure(failure: GraphFailure): string {
	return [failure.status, failure.code === undefined ? undefined : printable(failure.code, 100), printable(failure.message, 500)].filter(Boolean).join(' ');
}

function describeReport(report: ReconcileReport, applied: boolean, correlationId: string, sets: readonly ManifestSet[]): string {
	const lines = [
		`scope: ${formatCount(report.scope.length)} packages${report.groups.length > 0 ? ` and ${formatCount(report.groups.length)} groups` : ''}; ${formatCount(report.desired)} links desired, ${formatCount(report.current)} present`,
		'',
	];
	if (report.sets.length > 0) {
		lines.push(`sets (${formatCount(report.sets.length)})`);
		for (const set of report.sets) {
			lines.push(`  ${JSON.stringify(set.name)} (line ${set.line}): ${formatCount(set.members)} packages, ${formatCount(set.links)} links, ${set.missing === 0 ? 'none missing' : `${formatCount(set.missing)} missing`}`);
		}

		lines.push('');
	}

	// A missing link a set asks for names the set (the first set whose members hold both ends).
	const members = sets.map(set => ({name: set.name, ids: new Set(set.members)}));
	const setOf = (pair: Pair) =>
		pair.incompatibleAccessPackageId === undefined ? undefined : members.find(set => set.ids.has(pair.accessPackageId) && set.ids.has(pair.incompatibleAccessPackageId!))?.name;
	const section = (title: string, pairs: readonly Pair[]) => {
		lines.push(`${title} (${formatCount(pairs.length)})`);
		for (const pair of pairs) {
			// Extra links come from Graph's lists: their ids are Graph's text, escaped like any other.
			const set = setOf(pair);
			lines.push(`  ${pairText(pair)}${set === undefined ? '' : `  (set ${JSON.stringify(set)})`}`);
		}

		lines.push('');
	};

	section('missing', report.missing);
	section('extra', report.extra);
	if (report.outOfScope.length > 0) {
		section('to packages or groups outside the scope (left alone)', report.outOfScope);
	}

	for (const failure of report.readFailures) {
		lines.push(`could not read ${failure.accessPackageId}'s incompatible ${failure.kind === 'group' ? 'groups' : 'packages'}: ${describeFailure(failure.failure)}`);
	}

	if (applied) {
		lines.push(
			`enqueued ${formatCount(report.enqueued.add)} adds and ${formatCount(report.enqueued.remove)} removes in ${formatCount(report.enqueued.messages)} messages, correlation ${correlationId} (sod-sync status ${correlationId} --watch)`,
		);
	} else if (hasDrift(report)) {
		lines.push('nothing changed: --apply enqueues the missing links (and with --prune, removes the extra ones)');
	} else {
		lines.push('no drift');
	}

	return `${lines.join('\n')}\n`;
}

export async function violationsCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {json: {type: 'boolean'}});
	if (values.help) {
		io.stdout.write(`${violationsHelp}\n`);
		return exitCodes.ok;
	}

	if (positionals.length > 1) {
		throw new UsageError('violations takes one manifest');
	}

	const manifest = await loadManifest(positionals[0], io);
	if (typeof manifest === 'number') {
		return manifest;
	}

	const {settings, engine} = engineFrom(values, io);
	// A symmetric rule is one rule for violations: holding both packages is the same either way; so is a set's pair.
	const rules = manifest.rules
		.filter(rule => rule.set === undefined || rule.pair.accessPackageId < rule.pair.incompatibleAccessPackageId!)
		.map(rule => ({...rule, symmetric: false}));
	const report = await findViolations(engine, rules, Date.now() + settings.invocationBudgetMs, readConcurrencyFor(settings));
	if (values.json) {
		io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
	} else {
		const lines = [`${formatCount(report.violations.length)} users hold both sides of a rule (${formatCount(desiredLinks(rules).length)} rules checked)`];
		for (const violation of report.violations) {
			// Names and ids are Graph's text (a guest chooses their own display name): escaped before they reach a terminal.
			const {user} = violation;
			lines.push(
				`  ${ruleText(violation.rule)}: ${printable(user.displayName ?? '', 256)} <${printable(user.principalName ?? user.objectId, 256)}> (${printable(user.objectId, 64)}); ${
					violation.rule.incompatibleGroupId === undefined
						? `assignments ${printable(violation.assignmentId ?? '?', 64)} and ${printable(violation.incompatibleAssignmentId ?? '?', 64)}`
						: `assignment ${printable(violation.assignmentId ?? '?', 64)}, member of the group`
				}`,
			);
		}

		for (const failure of report.readFailures) {
			lines.push(`could not read ${ruleText(failure.rule)}: ${describeFailure(failure.failure)}`);
		}

		io.stdout.write(`${lines.join('\n')}\n`);
	}

	if (report.readFailures.length > 0) {
		return exitCodes.error;
	}

	return report.violations.length > 0 ? exitCodes.drift : exitCodes.ok;
}

/** A rule in the violations report: `A + B`, or `A + group G`. */
function ruleText(rule: Pair): string {
	return `${rule.accessPackageId} + ${rule.incompatibleGroupId === undefined ? rule.incompatibleAccessPackageId : `group ${rule.incompatibleGroupId}`}`;
}

/** Settings from the environment and flags, and an engine on them: what both commands read Graph with. */
function engineFrom(values: Record<string, unknown>, io: CommandIo) {
	const {settings, environment} = settingsFrom(values, io.environment);
	return {settings, engine: createLinkEngine(settings, createTokenSource(environment, settings))};
}
