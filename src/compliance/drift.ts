// Drift between the desired links and the tenant's, within a scope: a pure function.

import {pairKey, type Pair} from '../pair.js';

export interface Drift {
	/** Desired links the tenant lacks. */
	missing: Pair[];
	/** Links the tenant has between two in-scope packages that no rule asks for. */
	extra: Pair[];
	/** Links from an in-scope package to one outside the scope: reported, never pruned. */
	outOfScope: Pair[];
}

/**
 * @example
 * computeDrift(desired, new Map([[a, [b, c]]]), new Set([a, b]))
 */
export function computeDrift(desired: readonly Pair[], current: ReadonlyMap<string, readonly string[]>, scope: ReadonlySet<string>): Drift {
	const wanted = new Set(desired.map(pair => pairKey(pair)));
	const present = new Set<string>();
	const drift: Drift = {missing: [], extra: [], outOfScope: []};
	for (const [accessPackageId, targets] of current) {
		for (const incompatibleAccessPackageId of targets) {
			const pair = {accessPackageId, incompatibleAccessPackageId};
			present.add(pairKey(pair));
			if (wanted.has(pairKey(pair))) {
				continue;
			}

			(scope.has(incompatibleAccessPackageId) ? drift.extra : drift.outOfScope).push(pair);
		}
	}

	drift.missing = desired.filter(pair => !present.has(pairKey(pair)));
	const byKey = (a: Pair, b: Pair) => pairKey(a).localeCompare(pairKey(b));
	drift.missing.sort(byKey);
	drift.extra.sort(byKey);
	drift.outOfScope.sort(byKey);
	return drift;
}
