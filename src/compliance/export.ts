// Export: the tenant's separation-of-duties rules as a manifest that `reconcile` and `enqueue` read. Every package in
// scope is read through the engine (paged, paced, batched like any other read), its incompatible packages and its
// incompatible groups, and so is every package they link to outside the scope, so that the manifest names every link
// among the packages it names and every group link they have: `reconcile` of the export then finds no drift, and
// `reconcile --apply --prune` of it restores the tenant as it was.

import type {LinkEngine} from '../engine/link-engine.js';
import type {GraphFailure} from '../graph/graph-failure.js';
import {linkListOperation, packageIds} from '../graph/link-gateway.js';
import {pairKey, type Pair, type PairKind} from '../pair/pair.js';
import {forEachBounded} from './for-each-bounded.js';

/** Which packages to export: every one, those of one catalog, or those a file lists. */
export type ExportScope = {kind: 'all'} | {kind: 'catalog'; catalogId: string} | {kind: 'packages'; ids: readonly string[]};

export interface ExportedRule {
	pair: Pair;
	/** Linked both ways in the tenant: one rule, written once (from the lower id). */
	symmetric: boolean;
}

export interface ExportOptions {
	engine: LinkEngine;
	scope: ExportScope;
	deadline: number;
	signal?: AbortSignal;
	/** Package reads in progress at once (`readConcurrencyFor`). */
	readConcurrency: number;
	/** Packages read so far, of those known to need reading. */
	onProgress?: (read: number, toRead: number) => void;
}

export interface ExportResult {
	rules: ExportedRule[];
	/** The packages in scope. */
	scope: string[];
	/** Display names of packages and groups as Graph listed them, by id (for a reviewer: the ids are the key). */
	names: Map<string, string>;
	/** Package links read (each direction counted). */
	links: number;
	/** Group links read. */
	groupLinks: number;
	/** Lists that could not be read: the export is then incomplete, and is not written. */
	readFailures: Array<{accessPackageId: string; kind: PairKind; failure: GraphFailure}>;
}

/** The tenant's package list could not be read (nothing to export from). */
export class ExportListError extends Error {
	override name = 'ExportListError';
}

export async function exportRules(options: ExportOptions): Promise<ExportResult> {
	const run = {deadline: options.deadline, signal: options.signal};
	const listed = await options.engine.readAll({kind: 'list-packages', nextLink: undefined}, run);
	if (listed.kind === 'failed') {
		throw new ExportListError(`could not list the tenant's access packages: ${[listed.failure.status, listed.failure.code, listed.failure.message].filter(Boolean).join(' ')}`);
	}

	const names = new Map<string, string>();
	const catalogs = new Map<string, string | undefined>();
	for (const item of listed.value as Array<{id?: unknown; displayName?: unknown; catalog?: {id?: unknown} | null}>) {
		const [id] = packageIds([item]);
		if (id !== undefined) {
			if (typeof item.displayName === 'string') {
				names.set(id, item.displayName);
			}

			catalogs.set(id, typeof item.catalog?.id === 'string' ? item.catalog.id.toLowerCase() : undefined);
		}
	}

	const scope = scopeOf(options.scope, catalogs);
	const links = new Map<string, string[]>();
	const groupLinks = new Map<string, string[]>();
	const readFailures: ExportResult['readFailures'] = [];
	let read = 0;
	let toRead = scope.length;
	const readList = async (accessPackageId: string, kind: PairKind) => {
		const answer = await options.engine.readAll(linkListOperation(accessPackageId, kind), run);
		if (answer.kind === 'failed') {
			readFailures.push({accessPackageId, kind, failure: answer.failure});
			return;
		}

		(kind === 'group' ? groupLinks : links).set(accessPackageId, packageIds(answer.value));
		if (kind === 'group') {
			for (const group of answer.value as Array<{id?: unknown; displayName?: unknown}>) {
				const [id] = packageIds([group]);
				if (id !== undefined && typeof group.displayName === 'string') {
					names.set(id, group.displayName);
				}
			}
		}
	};

	const readLinks = async (ids: readonly string[]) =>
		forEachBounded(ids, options.readConcurrency, async accessPackageId => {
			await Promise.all([readList(accessPackageId, 'package'), readList(accessPackageId, 'group')]);
			options.onProgress?.(++read, toRead);
		});

	await readLinks(scope);
	// The packages the scope links to are named by the manifest too: their links among named packages are rules as well.
	const inScope = new Set(scope);
	const named = new Set(scope);
	for (const targets of links.values()) {
		for (const target of targets) {
			named.add(target);
		}
	}

	const outside = [...named].filter(id => !inScope.has(id)).sort();
	toRead += outside.length;
	await readLinks(outside);
	readFailures.sort((a, b) => a.accessPackageId.localeCompare(b.accessPackageId) || a.kind.localeCompare(b.kind));
	const count = (lists: ReadonlyMap<string, readonly string[]>) => [...lists.values()].reduce((sum, targets) => sum + targets.length, 0);
	return {rules: [...rulesOf(links, named), ...groupRulesOf(groupLinks)].sort(byPair), scope, names, links: count(links), groupLinks: count(groupLinks), readFailures};
}

function scopeOf(scope: ExportScope, catalogs: ReadonlyMap<string, string | undefined>): string[] {
	switch (scope.kind) {
		case 'all': {
			return [...catalogs.keys()].sort();
		}

		case 'catalog': {
			const catalogId = scope.catalogId.toLowerCase();
			return [...catalogs.entries()].filter(([, catalog]) => catalog === catalogId).map(([id]) => id).sort();
		}

		case 'packages': {
			return [...new Set(scope.ids)].sort();
		}
	}
}

/**
 * The rules the links make, among the named packages: a link both ways once, as symmetric, from the lower id; each
 * list sorted, so that two exports of the same tenant are the same file.
 *
 * @example
 * rulesOf(new Map([['a', ['b']], ['b', ['a', 'c']]]), new Set(['a', 'b', 'c']))
 * // [{pair: {a -> b}, symmetric: true}, {pair: {b -> c}, symmetric: false}]
 */
export function rulesOf(links: ReadonlyMap<string, readonly string[]>, named: ReadonlySet<string>): ExportedRule[] {
	const targets = new Map([...links].map(([from, to]) => [from, new Set(to)]));
	const has = (from: string, to: string) => targets.get(from)?.has(to) ?? false;
	const rules = new Map<string, ExportedRule>();
	for (const [accessPackageId, incompatible] of targets) {
		for (const incompatibleAccessPackageId of incompatible) {
			if (!named.has(incompatibleAccessPackageId) || !named.has(accessPackageId)) {
				continue;
			}

			const symmetric = has(incompatibleAccessPackageId, accessPackageId);
			const pair = symmetric && incompatibleAccessPackageId < accessPackageId ? {accessPackageId: incompatibleAccessPackageId, incompatibleAccessPackageId: accessPackageId} : {accessPackageId, incompatibleAccessPackageId};
			rules.set(pairKey(pair), {pair, symmetric});
		}
	}

	return [...rules.values()].sort(byPair);
}

/** Every group link of the packages read, one rule each (a group rule has no other direction). */
export function groupRulesOf(groupLinks: ReadonlyMap<string, readonly string[]>): ExportedRule[] {
	const rules = [...groupLinks].flatMap(([accessPackageId, groups]) => [...new Set(groups)].map(incompatibleGroupId => ({pair: {accessPackageId, incompatibleGroupId}, symmetric: false})));
	return rules.sort(byPair);
}

function byPair(a: ExportedRule, b: ExportedRule): number {
	return pairKey(a.pair).localeCompare(pairKey(b.pair));
}

/** A display name as a CSV cell a spreadsheet will not run: a leading =, +, - or @ gets a ' before it (OWASP). */
function inertCell(text: string): string {
	const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
	return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""').replaceAll(/[\r\n]+/g, ' ')}"` : safe;
}

/**
 * The manifest's text: CSV (`accessPackageId,incompatibleAccessPackageId,symmetric` and two name columns the readers
 * ignore; with `incompatibleGroupId` and `incompatibleGroupName` columns after them when a rule names a group) or JSON
 * Lines (the same fields). Names are Graph's text: written as data, never as the key.
 */
export function* formatExport(rules: readonly ExportedRule[], names: ReadonlyMap<string, string>, format: 'csv' | 'jsonl'): Generator<string> {
	const name = (id: string | undefined) => (id === undefined ? undefined : names.get(id));
	if (format === 'csv') {
		const groups = rules.some(rule => rule.pair.incompatibleGroupId !== undefined);
		yield `accessPackageId,incompatibleAccessPackageId,symmetric,accessPackageName,incompatibleAccessPackageName${groups ? ',incompatibleGroupId,incompatibleGroupName' : ''}\n`;
		for (const {pair, symmetric} of rules) {
			const cells = [pair.accessPackageId, pair.incompatibleAccessPackageId ?? '', String(symmetric), inertCell(name(pair.accessPackageId) ?? ''), inertCell(name(pair.incompatibleAccessPackageId) ?? '')];
			if (groups) {
				cells.push(pair.incompatibleGroupId ?? '', inertCell(name(pair.incompatibleGroupId) ?? ''));
			}

			yield `${cells.join(',')}\n`;
		}

		return;
	}

	for (const {pair, symmetric} of rules) {
		yield `${JSON.stringify(
			pair.incompatibleGroupId === undefined
				? {...pair, symmetric, accessPackageName: name(pair.accessPackageId), incompatibleAccessPackageName: name(pair.incompatibleAccessPackageId)}
				: {...pair, accessPackageName: name(pair.accessPackageId), incompatibleGroupName: name(pair.incompatibleGroupId)},
		)}\n`;
	}
}
