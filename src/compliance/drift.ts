// Drift between the desired links and the tenant's, within a scope: pure, one package at a time, so a reconcile can
// compare each package as its links arrive and keep only what differs (never every link of the tenant at once).

import {pairKey, type Pair} from '../pair/pair.js';

export interface Drift {
	/** Desired links the tenant lacks. */
	missing: Pair[];
	/** Links the tenant has between two in-scope packages that no rule asks for. */
	extra: Pair[];
	/** Links from an in-scope package to one outside the scope: reported, never pruned. */
	outOfScope: Pair[];
}

/**
 * Compares packages one by one as their links are read. A package never compared says nothing: its desired links are
 * not called missing (its links could not be read).
 *
 * @example
 * const tally = new DriftTally(desired, scope);
 * tally.compare(a, ['b', 'c']);
 * const {missing, extra, outOfScope} = tally.result();
 */
export class DriftTally {
	readonly #wanted = new Map<string, Set<string>>();
	readonly #scope: ReadonlySet<string>;
	readonly #drift: Drift = {missing: [], extra: [], outOfScope: []};
	#present = 0;

	constructor(desired: Iterable<Pair>, scope: ReadonlySet<string>) {
		for (const {accessPackageId, incompatibleAccessPackageId} of desired) {
			let targets = this.#wanted.get(accessPackageId);
			if (!targets) {
				targets = new Set();
				this.#wanted.set(accessPackageId, targets);
			}

			targets.add(incompatibleAccessPackageId);
		}

		this.#scope = scope;
	}

	/** Links read from the tenant so far. */
	get present(): number {
		return this.#present;
	}

	/** One package's links as Graph listed them (each target once). */
	compare(accessPackageId: string, targets: Iterable<string>): void {
		const wanted = this.#wanted.get(accessPackageId) ?? new Set<string>();
		const present = new Set(targets);
		this.#present += present.size;
		for (const incompatibleAccessPackageId of present) {
			if (!wanted.has(incompatibleAccessPackageId)) {
				(this.#scope.has(incompatibleAccessPackageId) ? this.#drift.extra : this.#drift.outOfScope).push({accessPackageId, incompatibleAccessPackageId});
			}
		}

		for (const incompatibleAccessPackageId of wanted) {
			if (!present.has(incompatibleAccessPackageId)) {
				this.#drift.missing.push({accessPackageId, incompatibleAccessPackageId});
			}
		}
	}

	/** The drift found so far, each list sorted. */
	result(): Drift {
		const byKey = (a: Pair, b: Pair) => pairKey(a).localeCompare(pairKey(b));
		return {missing: [...this.#drift.missing].sort(byKey), extra: [...this.#drift.extra].sort(byKey), outOfScope: [...this.#drift.outOfScope].sort(byKey)};
	}
}
