// Reconcile: read the tenant's links for every package in scope, compare with the manifest, and optionally enqueue
// the fix (missing links as `add`, with --prune extra ones as `remove`) for the worker to apply with its dead letters.
// A package's incompatible groups are read too when the manifest names a group (the groups it names are in scope: a
// link to any other group is reported, never pruned, as a link to a package outside the scope is).
// The CLI and the timer Function share this. Packages are read a bounded number at a time and compared as they
// arrive, so memory follows the drift and the concurrency, not the tenant's size.

import type {LinkEngine} from '../engine/link-engine.js';
import type {GraphFailure} from '../graph/graph-failure.js';
import {linkListOperation, packageIds} from '../graph/link-gateway.js';
import type {LinkAction, Pair, PairKind} from '../pair/pair.js';
import {DriftTally, type Drift} from './drift.js';
import {forEachBounded} from './for-each-bounded.js';
import {desiredLinks, namedGroups, namedPackages, type ManifestRule, type ManifestSet} from './manifest.js';

/**
 * Reads in progress at once. The engine bounds the requests in flight (and packs reads into `$batch`); this bounds
 * the reads waiting for them, each holding its pages. Callers pass requests x batch size: enough to keep every slot full.
 */
export function readConcurrencyFor(settings: {graphMaxConcurrency: number; graphBatchSize: number}): number {
	return Math.max(1, settings.graphMaxConcurrency * settings.graphBatchSize);
}

export interface ReconcileOptions {
	engine: LinkEngine;
	rules: readonly ManifestRule[];
	/** The manifest's sets (their links are in `rules`): each reported as one rule. */
	sets?: readonly ManifestSet[];
	/** `named`: the packages the manifest names (default); `all`: every package in the tenant. */
	scope: 'named' | 'all';
	apply: boolean;
	prune: boolean;
	/** Enqueues pairs for the worker; returns the number of messages written. */
	enqueue: (pairs: readonly Pair[], action: LinkAction) => Promise<number>;
	deadline: number;
	signal?: AbortSignal;
	/** Package reads in progress at once (`readConcurrencyFor`). */
	readConcurrency: number;
}

export interface ReconcileReport extends Drift {
	scope: string[];
	/** The groups in scope: the ones the manifest names (their lists are read only when there is one). */
	groups: string[];
	desired: number;
	/** Links read from the tenant, from in-scope packages. */
	current: number;
	/** Link lists that could not be read (a package's incompatible packages or groups): the drift is then incomplete. */
	readFailures: Array<{accessPackageId: string; kind: PairKind; failure: GraphFailure}>;
	/** Pairs enqueued by --apply / --prune. */
	enqueued: {add: number; remove: number; messages: number};
	/** Each set as one rule: its size, the links it asks for and how many of them are missing. */
	sets: Array<{name: string; line: number; members: number; links: number; missing: number}>;
}

export async function reconcile(options: ReconcileOptions): Promise<ReconcileReport> {
	const run = {deadline: options.deadline, signal: options.signal};
	const readFailures: ReconcileReport['readFailures'] = [];
	let scope = namedPackages(options.rules);
	if (options.scope === 'all') {
		const listed = await options.engine.readAll({kind: 'list-packages', nextLink: undefined}, run);
		if (listed.kind === 'failed') {
			throw new Error(`could not list the tenant's access packages: ${listed.failure.status ?? ''} ${listed.failure.code ?? ''} ${listed.failure.message}`);
		}

		scope = [...new Set([...scope, ...packageIds(listed.value)])].sort();
	}

	const desired = desiredLinks(options.rules);
	const groups = namedGroups(options.rules);
	// A list that could not be read is never compared: its desired links are not called missing.
	const tally = new DriftTally(desired, {packages: new Set(scope), groups: new Set(groups)});
	const kinds: PairKind[] = groups.length > 0 ? ['package', 'group'] : ['package'];
	const lists = scope.flatMap(accessPackageId => kinds.map(kind => ({accessPackageId, kind})));
	await forEachBounded(lists, options.readConcurrency, async ({accessPackageId, kind}) => {
		const read = await options.engine.readAll(linkListOperation(accessPackageId, kind), run);
		if (read.kind === 'ok') {
			tally.compare(accessPackageId, kind, packageIds(read.value));
		} else {
			readFailures.push({accessPackageId, kind, failure: read.failure});
		}
	});
	readFailures.sort((a, b) => a.accessPackageId.localeCompare(b.accessPackageId) || a.kind.localeCompare(b.kind));
	const drift = tally.result();
	const enqueued = {add: 0, remove: 0, messages: 0};
	if (options.apply && drift.missing.length > 0) {
		enqueued.messages += await options.enqueue(drift.missing, 'add');
		enqueued.add = drift.missing.length;
	}

	if (options.apply && options.prune && drift.extra.length > 0) {
		enqueued.messages += await options.enqueue(drift.extra, 'remove');
		enqueued.remove = drift.extra.length;
	}

	const sets = (options.sets ?? []).map(set => {
		const members = new Set(set.members);
		const missing = drift.missing.filter(pair => members.has(pair.accessPackageId) && pair.incompatibleAccessPackageId !== undefined && members.has(pair.incompatibleAccessPackageId)).length;
		return {name: set.name, line: set.line, members: members.size, links: members.size * (members.size - 1), missing};
	});
	return {
		...drift,
		scope,
		groups,
		desired: desired.length,
		current: tally.present,
		readFailures,
		enqueued,
		sets,
	};
}

export function hasDrift(report: ReconcileReport): boolean {
	return report.missing.length > 0 || report.extra.length > 0;
}

/** One line for a log: what was compared and what differs. */
export function describeDriftSummary(report: ReconcileReport): string {
	const parts = [
		`${report.scope.length} packages${report.groups.length > 0 ? ` and ${report.groups.length} groups` : ''} in scope`,
		`${report.desired} links desired`,
		...(report.sets.length > 0 ? [`${report.sets.length} sets (${report.sets.filter(set => set.missing > 0).length} with links missing)`] : []),
		`${report.current} present`,
		`${report.missing.length} missing`,
		`${report.extra.length} extra`,
	];
	if (report.outOfScope.length > 0) {
		parts.push(`${report.outOfScope.length} to packages or groups outside the scope (left alone)`);
	}

	if (report.readFailures.length > 0) {
		parts.push(`${report.readFailures.length} link lists unreadable`);
	}

	if (report.enqueued.messages > 0) {
		parts.push(`enqueued ${report.enqueued.add} adds and ${report.enqueued.remove} removes in ${report.enqueued.messages} messages`);
	}

	return `sod-sync reconcile: ${parts.join(', ')}`;
}
