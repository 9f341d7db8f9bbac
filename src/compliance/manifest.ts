// The desired state: separation-of-duties rules kept in a file reviewed like code (CSV or JSON Lines of pairs, with an
// optional `symmetric` column or field per rule). Read whole: a manifest is rules, not bulk data, and one larger than
// `maximumManifestRows` is refused before anything is read from Graph.

import type {Readable} from 'node:stream';
import {pairKey, reversePair, type Pair} from '../pair/pair.js';
import {PairFileError, readPairRows, type PairFileFormat} from '../pair/pair-file.js';

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
		super(`more than ${maximumRows.toLocaleString('en-US')} rows: a manifest holds rules, not bulk data (enqueue bulk imports with sod-sync enqueue, or split the manifest by catalog)`);
	}
}

export interface ManifestRule {
	line: number;
	pair: Pair;
	symmetric: boolean;
}

export interface Manifest {
	rules: ManifestRule[];
	/** Every row that is not a rule, with its line number and what is wrong. */
	errors: Array<{line: number; error: string}>;
}

/** Rejects with `ManifestTooLargeError` past `maximumRows` rows, having read no further. */
export async function readManifest(input: Readable, format?: PairFileFormat, maximumRows = maximumManifestRows): Promise<Manifest> {
	const manifest: Manifest = {rules: [], errors: []};
	let rows = 0;
	try {
		for await (const row of readPairRows(input, format)) {
			if (++rows > maximumRows) {
				input.destroy();
				throw new ManifestTooLargeError(maximumRows);
			}

			if (row.kind === 'pair') {
				manifest.rules.push({line: row.line, pair: row.pair, symmetric: row.symmetric});
			} else {
				manifest.errors.push({line: row.line, error: row.reason});
			}
		}
	} catch (error) {
		if (error instanceof PairFileError) {
			manifest.errors.push({line: error.line, error: error.message.replace(/^line \d+: /, '')});
		} else {
			throw error;
		}
	}

	return manifest;
}

/** The links the rules ask for: each rule's pair, and its reverse when symmetric; each link once. */
export function desiredLinks(rules: readonly ManifestRule[]): Pair[] {
	const links = new Map<string, Pair>();
	for (const rule of rules) {
		links.set(pairKey(rule.pair), rule.pair);
		if (rule.symmetric) {
			const reverse = reversePair(rule.pair);
			links.set(pairKey(reverse), reverse);
		}
	}

	return [...links.values()];
}

/** The packages the rules name: the default scope of a reconcile. */
export function namedPackages(rules: readonly ManifestRule[]): string[] {
	return [...new Set(rules.flatMap(rule => [rule.pair.accessPackageId, rule.pair.incompatibleAccessPackageId]))].sort();
}
