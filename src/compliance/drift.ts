// Drift between the desired links and the tenant's, within a scope: pure, one link list at a time (a package's
// incompatible packages, or its incompatible groups), so a reconcile can compare each list as it arrives and keep only
// what differs (never every link of the tenant at once).

import {makePair, pairKey, pairKind, pairTarget, type Pair, type PairKind} from '../pair/pair.js';

export interface Drift {
	/** Desired links the tenant lacks. */
	missing: Pair[];
	/** Links the tenant has from an in-scope package to an in-scope package or group that no rule asks for. */
	extra: Pair[];
	/** Links from an in-scope package to a package or group outside the scope: reported, never pruned. */
	outOfScope: Pair[];
}

/** What is in scope: packages (their lists are read; they may be targets) and groups (they may be targets). */
export interface DriftScope {
	packages: ReadonlySet<string>;
	groups: ReadonlySet<string>;
}

/**
 * Compares link lists one by one as they are read. A list never compared says nothing: its desired links are not
 * called missing (it could not be read).
 *
 * @example
 * const tally = new DriftTally(desired, {packages: new Set([a, b, c]), groups: new Set()});
 * tally.compare(a, 'package', [b, c]);
 * const {missing, extra, outOfScope} = tally.result();
 */
export class DriftTally {
	readonly #wanted = new Map<string, Set<string>>();
	readonly #scope: DriftScope;
	readonly #drift: Drift = {missing: [], extra: [], outOfScope: []};
	#present = 0;

	constructor(desired: Iterable<Pair>, scope: DriftScope) {
		for (const pair of desired) {
			const key = listKey(pair.accessPackageId, pairKind(pair));
			let targets = this.#wanted.get(key);
			if (!targets) {
				targets = new Set();
				this.#wanted.set(key, targets);
			}

			targets.add(pairTarget(pair));
		}

		this.#scope = scope;
	}

	/** Links read from the tenant so far. */
	get present(): number {
		return this.#present;
	}

	/** One list as Graph gave it: `accessPackageId`'s incompatible packages or groups (each target once). */
	compare(accessPackageId: string, kind: PairKind, targets: Iterable<string>): void {
		const wanted = this.#wanted.get(listKey(accessPackageId, kind)) ?? new Set<string>();
		const inScope = kind === 'group' ? this.#scope.groups : this.#scope.packages;
		const present = new Set(targets);
		this.#present += present.size;
		for (const target of present) {
			if (!wanted.has(target)) {
				(inScope.has(target) ? this.#drift.extra : this.#drift.outOfScope).push(makePair(kind, accessPackageId, target));
			}
		}

		for (const target of wanted) {
			if (!present.has(target)) {
				this.#drift.missing.push(makePair(kind, accessPackageId, target));
			}
		}
	}

	/** The drift found so far, each list sorted (package rules before group rules of the same package). */
	result(): Drift {
		const byKey = (a: Pair, b: Pair) => pairKey(a).localeCompare(pairKey(b));
		return {missing: [...this.#drift.missing].sort(byKey), extra: [...this.#drift.extra].sort(byKey), outOfScope: [...this.#drift.outOfScope].sort(byKey)};
	}
}

function listKey(accessPackageId: string, kind: PairKind): string {
	return `${accessPackageId}|${kind}`;
}
