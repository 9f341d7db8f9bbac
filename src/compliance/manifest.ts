// The desired state: separation-of-duties rules kept in a file reviewed like code (CSV or JSON Lines of pairs, package
// rules and group rules, with an optional `symmetric` column or field per package rule, and sets of mutually exclusive
// packages). Read whole: a manifest is
// rules, not bulk data, and one larger than `maximumManifestRows` is refused before anything is read from Graph.
//
// A set is every directed pair between its members: in JSON Lines one row, `{"set": [A, B, C], "name": "..."}`; in CSV
// one row per member, the `set` column naming the set, `accessPackageId` the member, `incompatibleAccessPackageId` empty.

import type {Readable} from 'node:stream';
import {pairKey, reversePair, type Pair} from '../pair/pair.js';
import {PairFileError, readRuleRows, type PairFileFormat} from '../pair/pair-file.js';

/**
 * Defaults to 250,000 rows: a tenant's separation-of-duties rules, with room (a rule set of 5,000 packages each
 * incompatible with 50 others). Past it the manifest is refused, not read: its rules, the desired links and the drift
 * are all held in memory, and the scheduled reconcile shares its process with the worker.
 */
export const maximumManifestRows = 250_000;

/** A manifest with more rows than `maximumManifestRows`: refused whole. */
export class ManifestTooLargeError extends Error {
	override name = 'ManifestTooLargeError';

	constructor(readonly maximumRows: number) {
		super(`more than ${maximumRows.toLocaleString('en-US')} rows (or links, its sets expanded): a manifest holds rules, not bulk data (enqueue bulk imports with sod-sync enqueue, or split the manifest by catalog)`);
	}
}

export interface ManifestRule {
	line: number;
	pair: Pair;
	symmetric: boolean;
	/** The set this link comes from (a set's links are rules of their own, one per direction). */
	set?: string;
}

/** A set of mutually exclusive packages: one rule in the drift report, every directed pair between members in `rules`. */
export interface ManifestSet {
	name: string;
	/** Where it is written (its first member's row in CSV). */
	line: number;
	members: string[];
}

export interface Manifest {
	/** Pair rules, and every set's directed pairs. */
	rules: ManifestRule[];
	sets: ManifestSet[];
	/** Every row that is not a rule, with its line number and what is wrong. */
	errors: Array<{line: number; error: string}>;
}

/** A set holds at most this many packages (9,900 links): mutual exclusion among more is a policy to split. */
export const maximumSetMembers = 100;

/** Rejects with `ManifestTooLargeError` past `maximumRows` rows (or links, once sets are expanded), having read no further. */
export async function readManifest(input: Readable, format?: PairFileFormat, maximumRows = maximumManifestRows): Promise<Manifest> {
	const manifest: Manifest = {rules: [], sets: [], errors: []};
	const sets = new Map<string, ManifestSet>();
	const addSet = (name: string, line: number, members: readonly string[], named: boolean) => {
		const known = sets.get(name);
		if (known && named) {
			manifest.errors.push({line, error: `set ${JSON.stringify(name)} is already defined at line ${known.line}`});
			return;
		}

		const set = known ?? {name, line, members: []};
		for (const member of members) {
			if (!set.members.includes(member)) {
				set.members.push(member);
			}
		}

		sets.set(name, set);
	};

	let rows = 0;
	try {
		for await (const row of readRuleRows(input, format)) {
			if (++rows > maximumRows) {
				input.destroy();
				throw new ManifestTooLargeError(maximumRows);
			}

			switch (row.kind) {
				case 'pair': {
					manifest.rules.push({line: row.line, pair: row.pair, symmetric: row.symmetric});
					break;
				}

				case 'set': {
					addSet(row.name ?? `set at line ${row.line}`, row.line, row.members, true);
					break;
				}

				case 'set-member': {
					addSet(row.name, row.line, [row.accessPackageId], false);
					break;
				}

				case 'invalid': {
					manifest.errors.push({line: row.line, error: row.reason});
					break;
				}
			}
		}
	} catch (error) {
		if (error instanceof PairFileError) {
			manifest.errors.push({line: error.line, error: error.message.replace(/^line \d+: /, '')});
		} else {
			throw error;
		}
	}

	let links = manifest.rules.length;
	for (const set of sets.values()) {
		if (set.members.length < 2) {
			manifest.errors.push({line: set.line, error: `set ${JSON.stringify(set.name)} names one package: a set names at least two`});
		} else if (set.members.length > maximumSetMembers) {
			manifest.errors.push({line: set.line, error: `set ${JSON.stringify(set.name)} names ${set.members.length} packages: at most ${maximumSetMembers} (split the policy)`});
		} else {
			links += set.members.length * (set.members.length - 1);
			manifest.sets.push(set);
		}
	}

	if (links > maximumRows) {
		throw new ManifestTooLargeError(maximumRows);
	}

	for (const set of manifest.sets) {
		for (const accessPackageId of set.members) {
			for (const incompatibleAccessPackageId of set.members) {
				if (accessPackageId !== incompatibleAccessPackageId) {
					manifest.rules.push({line: set.line, pair: {accessPackageId, incompatibleAccessPackageId}, symmetric: false, set: set.name});
				}
			}
		}
	}

	manifest.errors.sort((a, b) => a.line - b.line);
	return manifest;
}

/** The links the rules ask for: each rule's pair, and its reverse when symmetric; each link once. */
export function desiredLinks(rules: readonly ManifestRule[]): Pair[] {
	const links = new Map<string, Pair>();
	for (const rule of rules) {
		links.set(pairKey(rule.pair), rule.pair);
		if (rule.symmetric && rule.pair.incompatibleAccessPackageId !== undefined) {
			const reverse = reversePair(rule.pair);
			links.set(pairKey(reverse), reverse);
		}
	}

	return [...links.values()];
}

/** The packages the rules name: the default scope of a reconcile. */
export function namedPackages(rules: readonly ManifestRule[]): string[] {
	return [...new Set(rules.flatMap(({pair}) => (pair.incompatibleAccessPackageId === undefined ? [pair.accessPackageId] : [pair.accessPackageId, pair.incompatibleAccessPackageId])))].sort();
}

/** The groups the rules name: the groups in a reconcile's scope (a group link to any other is left alone). */
export function namedGroups(rules: readonly ManifestRule[]): string[] {
	return [...new Set(rules.flatMap(({pair}) => (pair.incompatibleGroupId === undefined ? [] : [pair.incompatibleGroupId])))].sort();
}
