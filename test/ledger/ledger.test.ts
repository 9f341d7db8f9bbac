// The ledger's model: accounting against the pre-image, and an import's status added up from its settlements.

import fc from 'fast-check';
import {describe, expect, it} from 'vitest';
import {accountFor, importChanges, importStatus, preImageKey, type ImportRecord, type Settlement} from '../../src/ledger/ledger.js';
import {settlement} from '../support/settlements.js';
import type {Pair} from '../../src/pair/pair.js';

const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const pair = (a: number, b: number): Pair => ({accessPackageId: id(a), incompatibleAccessPackageId: id(b)});
const at = new Date('2026-12-02T10:00:00Z');


function record(pairs: number, state: ImportRecord['state'] = 'enqueued'): ImportRecord {
	return {correlationId: 'import-1', source: 'pairs.csv', pairs, invalidRows: 0, duplicateRows: 0, startedAt: at, state};
}

describe('accountFor: what the import changed, judged by the pre-image', () => {
	const before = new Set([id(2)]);
	const preImage = (accessPackageId: string) => (accessPackageId === id(1) ? before : accessPackageId === id(9) ? undefined : new Set<string>());

	it('an add: new links are changes; links there before are not, whatever Graph answered', () => {
		const accounting = accountFor(
			[
				{pair: pair(1, 3), status: 'linked'},
				{pair: pair(1, 2), status: 'already-linked'},
				{pair: pair(1, 2), status: 'linked'}, // removed by someone after the pre-image, re-added: it was there before
				{pair: pair(1, 4), status: 'already-linked'}, // not there before: this import added it (a duplicate, a killed attempt)
			],
			'add',
			preImage,
		);
		expect(accounting).toMatchObject({linked: 1, alreadyLinked: 2, linkedPairs: [pair(1, 3)], foundLinked: [pair(1, 4)], withoutPreImage: 0});
	});

	it('a group rule is judged by its package\'s group list, never by its package list (and the reverse)', () => {
		const group = (n: number, g: number) => ({accessPackageId: id(n), incompatibleGroupId: id(g)});
		// Package 1's package list holds id(2); its group list holds id(5). Each kind reads its own list.
		const images = new Map<string, ReadonlySet<string>>([[id(1), new Set([id(2)])], [`${id(1)}|groups`, new Set([id(5)])]]);
		const accounting = accountFor(
			[
				{pair: group(1, 2), status: 'linked'}, // id(2) is in the package list, not the group list: a change
				{pair: group(1, 5), status: 'linked'}, // in the group list before: not a change
				{pair: pair(1, 5), status: 'linked'}, // id(5) is in the group list, not the package list: a change
			],
			'add',
			key => images.get(key),
		);
		expect(preImageKey(group(1, 2))).toBe(`${id(1)}|groups`);
		expect(preImageKey(pair(1, 2))).toBe(id(1));
		expect(accounting).toMatchObject({linked: 2, alreadyLinked: 1, linkedPairs: [group(1, 2), pair(1, 5)], withoutPreImage: 0});
	});

	it('a remove mirrors it', () => {
		const accounting = accountFor(
			[
				{pair: pair(1, 2), status: 'removed'},
				{pair: pair(1, 3), status: 'already-absent'},
				{pair: pair(1, 3), status: 'removed'}, // added by someone after the pre-image: not there before the import
				{pair: pair(1, 2), status: 'already-absent'}, // there before, absent now: this import removed it
			],
			'remove',
			preImage,
		);
		expect(accounting).toMatchObject({removed: 1, alreadyAbsent: 2, removedPairs: [pair(1, 2)], foundAbsent: [pair(1, 2)]});
	});

	it('without a pre-image, the answer stands and the pair is counted as such', () => {
		const accounting = accountFor(
			[
				{pair: pair(9, 1), status: 'linked'},
				{pair: pair(9, 2), status: 'already-linked'},
			],
			'add',
			preImage,
		);
		expect(accounting).toMatchObject({linked: 1, alreadyLinked: 1, foundLinked: [], withoutPreImage: 2});
	});
});

describe('importStatus', () => {
	it('adds up: pairs = every outcome + pending, with re-queues and redrives counted once', () => {
		const settlements = [
			settlement({messageId: 'm1', pairs: 6, linked: 3, linkedPairs: [pair(1, 3), pair(1, 4), pair(1, 5)], deadLetter: 1, deadLetters: {'not-found': 1}, requeued: 2}),
			settlement({messageId: 'm2', origin: 'requeue', pairs: 2, linked: 1, linkedPairs: [pair(1, 6)], requeued: 1}),
		];
		const running = importStatus('import-1', record(10), settlements, at);
		expect(running.outcomes).toEqual({linked: 4, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 1, requeued: 1});
		expect(running.pending).toBe(4);
		expect(running.done).toBe(false);

		settlements.push(
			settlement({messageId: 'm3', origin: 'requeue', pairs: 1, linked: 1, linkedPairs: [pair(1, 7)]}),
			settlement({messageId: 'm4', pairs: 4, alreadyLinked: 4}),
			// The dead letter, redriven after the package was created: it settles linked, and is no longer dead-lettered.
			settlement({messageId: 'm5', origin: 'redrive', pairs: 1, linked: 1, linkedPairs: [pair(1, 8)]}),
		);
		const done = importStatus('import-1', record(10), settlements, at);
		expect(done.outcomes).toEqual({linked: 6, 'already-linked': 4, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0});
		expect(done.deadLetters).toEqual({'not-found': 1});
		expect(done.redriven).toBe(1);
		expect(done.pending).toBe(0);
		expect(done.done).toBe(true);
		expect(done.changed).toEqual({linked: 6, removed: 0});
	});

	it("a found link is linked once: a killed attempt's link counts linked, a duplicate's already-linked", () => {
		const status = importStatus(
			'import-1',
			record(4),
			[
				settlement({messageId: 'm1', pairs: 2, linked: 1, linkedPairs: [pair(1, 3)], foundLinked: [pair(1, 4)]}),
				settlement({messageId: 'm2', pairs: 2, foundLinked: [pair(1, 3), pair(1, 4)]}),
			],
			at,
		);
		expect(status.outcomes.linked).toBe(2);
		expect(status.outcomes['already-linked']).toBe(2);
		expect(status.changed).toEqual({linked: 2, removed: 0});
		expect(importChanges([settlement({messageId: 'm1', pairs: 2, linkedPairs: [pair(1, 4)], foundLinked: [pair(1, 3), pair(1, 4)]})]).linked).toEqual([
			pair(1, 3),
			pair(1, 4),
		]);
	});

	it('is not done while the import is still being sent, nor without an import record', () => {
		expect(importStatus('import-1', record(0, 'enqueuing'), [], at).done).toBe(false);
		const orphan = importStatus('import-1', undefined, [settlement({messageId: 'm1', pairs: 1, linked: 1})], at);
		expect(orphan).toMatchObject({done: false, pending: undefined, pairs: undefined});
	});

	it('rate over the last minute, and an ETA from it', () => {
		const settlements = [
			settlement({messageId: 'old', pairs: 100, alreadyLinked: 100, settledAt: new Date(at.getTime() - 120_000)}),
			settlement({messageId: 'm1', pairs: 60, alreadyLinked: 60, settledAt: new Date(at.getTime() - 30_000)}),
			settlement({messageId: 'm2', pairs: 60, alreadyLinked: 60, settledAt: new Date(at.getTime() - 1000)}),
		];
		const status = importStatus('import-1', {...record(340), startedAt: new Date(at.getTime() - 300_000)}, settlements, at);
		expect(status.ratePerSecond).toBe(2);
		expect(status.etaSeconds).toBe(60);
		// Started 20 s ago: over those 20 s, not a minute.
		expect(importStatus('import-1', {...record(340), startedAt: new Date(at.getTime() - 20_000)}, settlements.slice(2), at).ratePerSecond).toBe(3);
		// Done: over the run, from the start to the last settlement (a message settles all at once).
		const done = importStatus('import-1', {...record(220), startedAt: new Date(at.getTime() - 300_000)}, settlements, at);
		expect(done).toMatchObject({done: true, etaSeconds: undefined});
		expect(done.ratePerSecond).toBeCloseTo(220 / 299, 5);
	});

	it('property: whatever the messages did, in any order, pairs = outcomes + pending, and all settled is done', () => {
		// Each message: its pairs end linked, already-linked, dead-lettered or re-queued (a new message); some dead
		// letters are redriven (a new message). Every step's status adds up; at the end nothing is left.
		const step = fc.record({linked: fc.nat(5), already: fc.nat(5), dead: fc.nat(3), requeue: fc.nat(3), redrive: fc.boolean()});
		fc.assert(
			fc.property(fc.integer({min: 1, max: 12}), fc.array(step, {minLength: 1, maxLength: 40}), (firstMessages, steps) => {
				const queue: Array<{origin: Settlement['origin']; pairs: number}> = Array.from({length: firstMessages}, () => ({origin: 'import', pairs: 0}));
				let enqueued = 0;
				for (const message of queue) {
					message.pairs = 3;
					enqueued += 3;
				}

				const settlements: Settlement[] = [];
				let n = 0;
				const settleNext = (plan: {linked: number; already: number; dead: number; requeue: number; redrive: boolean} | undefined) => {
					const message = queue.shift()!;
					let left = message.pairs;
					const take = (want: number) => {
						const got = Math.min(left, want);
						left -= got;
						return got;
					};

					const requeued = plan ? take(plan.requeue) : 0;
					const dead = plan ? take(plan.dead) : 0;
					const already = plan ? take(plan.already) : 0;
					const linked = left;
					const linkedPairs = Array.from({length: linked}, () => pair(1, ++n + 1));
					settlements.push(
						settlement({messageId: `m${settlements.length}`, origin: message.origin, pairs: message.pairs, linked, linkedPairs, alreadyLinked: already, deadLetter: dead, requeued}),
					);
					if (requeued > 0) {
						queue.push({origin: 'requeue', pairs: requeued});
					}

					if (dead > 0 && plan?.redrive) {
						queue.push({origin: 'redrive', pairs: dead});
					}
				};

				for (const plan of steps) {
					if (queue.length === 0) {
						break;
					}

					settleNext(plan);
					const status = importStatus('import-1', record(enqueued), settlements, at);
					const outcomes = Object.values(status.outcomes).reduce((sum, count) => sum + count, 0);
					expect(outcomes + status.pending!).toBe(enqueued);
					expect(status.pending).toBeGreaterThanOrEqual(0);
					expect(status.outcomes.requeued).toBeGreaterThanOrEqual(0);
				}

				while (queue.length > 0) {
					settleNext(undefined);
				}

				const status = importStatus('import-1', record(enqueued), settlements, at);
				expect(status.pending).toBe(0);
				expect(status.outcomes.requeued).toBe(0);
				expect(status.done).toBe(true);
				expect(status.outcomes.linked).toBe(n);
				expect(Object.values(status.outcomes).reduce((sum, count) => sum + count, 0)).toBe(enqueued);
			}),
		);
	});
});
