import {describe, expect, it} from 'vitest';
import {DriftTally, type Drift, type DriftScope} from '../../src/compliance/drift.js';
import type {Pair} from '../../src/pair/pair.js';
import {desiredLinks} from '../../src/compliance/manifest.js';

const [a, b, c, x] = ['a', 'b', 'c', 'x'];
const pair = (accessPackageId: string, incompatibleAccessPackageId: string) => ({accessPackageId, incompatibleAccessPackageId});
const scope = {packages: new Set([a, b, c]), groups: new Set<string>()};

/** A whole tenant compared at once: every package read (those in `current`) and every desired source. */
function computeDrift(desired: readonly Pair[], current: ReadonlyMap<string, readonly string[]>, inScope: DriftScope): Drift {
	const tally = new DriftTally(desired, inScope);
	for (const accessPackageId of new Set([...current.keys(), ...desired.map(pair => pair.accessPackageId)])) {
		tally.compare(accessPackageId, 'package', current.get(accessPackageId) ?? []);
	}

	return tally.result();
}

describe('DriftTally over a whole tenant', () => {
	it('finds nothing when the tenant matches', () => {
		expect(computeDrift([pair(a, b)], new Map([[a, [b]], [b, []]]), scope)).toEqual({missing: [], extra: [], outOfScope: []});
	});

	it('finds missing links', () => {
		expect(computeDrift([pair(a, b), pair(b, c)], new Map([[a, [b]], [b, []]]), scope).missing).toEqual([pair(b, c)]);
	});

	it('finds extra links between in-scope packages, and sets aside those to packages outside the scope', () => {
		const drift = computeDrift([pair(a, b)], new Map([[a, [b, c, x]]]), scope);
		expect(drift.extra).toEqual([pair(a, c)]);
		expect(drift.outOfScope).toEqual([pair(a, x)]);
		expect(drift.missing).toEqual([]);
	});

	it('finds both at once', () => {
		const drift = computeDrift([pair(a, b), pair(c, a)], new Map([[a, [c]], [c, []]]), scope);
		expect(drift).toEqual({missing: [pair(a, b), pair(c, a)], extra: [pair(a, c)], outOfScope: []});
	});
});

describe('desiredLinks', () => {
	it('expands symmetric rules and lists each link once', () => {
		expect(
			desiredLinks([
				{line: 2, pair: pair(a, b), symmetric: true},
				{line: 3, pair: pair(b, a), symmetric: false},
				{line: 4, pair: pair(a, c), symmetric: false},
			]),
		).toEqual([pair(a, b), pair(b, a), pair(a, c)]);
	});
});

describe('DriftTally', () => {
	it('compares packages one at a time, as their links arrive, with the same result as computeDrift', () => {
		const desired = [pair(a, b), pair(b, c), pair(c, a)];
		const tally = new DriftTally(desired, scope);
		tally.compare(b, 'package', [a]);
		tally.compare(a, 'package', [b, x]);
		tally.compare(c, 'package', []);
		expect(tally.present).toBe(3);
		expect(tally.result()).toEqual(computeDrift(desired, new Map([[a, [b, x]], [b, [a]], [c, []]]), scope));
		expect(tally.result()).toEqual({missing: [pair(b, c), pair(c, a)], extra: [pair(b, a)], outOfScope: [pair(a, x)]});
	});

	it('calls nothing missing for a package never compared (its links could not be read)', () => {
		const tally = new DriftTally([pair(a, b), pair(b, a)], scope);
		tally.compare(a, 'package', [b]);
		expect(tally.result()).toEqual({missing: [], extra: [], outOfScope: []});
	});

	it('counts a target Graph lists twice once', () => {
		const tally = new DriftTally([pair(a, b)], scope);
		tally.compare(a, 'package', [b, b, c, c]);
		expect(tally.present).toBe(2);
		expect(tally.result().extra).toEqual([pair(a, c)]);
	});
});

describe('DriftTally with group rules', () => {
	const [g, h, k] = ['g', 'h', 'k'];
	const group = (accessPackageId: string, incompatibleGroupId: string) => ({accessPackageId, incompatibleGroupId});
	const withGroups = {packages: new Set([a, b]), groups: new Set([g, h])};

	it('compares a package\'s groups apart from its packages: the same id in the other list is neither present nor wanted', () => {
		const tally = new DriftTally([pair(a, b), group(a, g)], withGroups);
		tally.compare(a, 'package', [b, g]);
		tally.compare(a, 'group', [b]);
		expect(tally.result()).toEqual({missing: [group(a, g)], extra: [], outOfScope: [pair(a, g), group(a, b)]});
	});

	it('calls a group link extra when the manifest names the group, and leaves a link to any other group alone', () => {
		const tally = new DriftTally([group(a, g)], withGroups);
		tally.compare(a, 'group', [g, h, k]);
		expect(tally.present).toBe(3);
		expect(tally.result()).toEqual({missing: [], extra: [group(a, h)], outOfScope: [group(a, k)]});
	});

	it('calls nothing missing for a group list never read', () => {
		const tally = new DriftTally([group(a, g)], withGroups);
		tally.compare(a, 'package', []);
		expect(tally.result()).toEqual({missing: [], extra: [], outOfScope: []});
	});
});
