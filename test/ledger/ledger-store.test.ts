// The ledger's table, on Azurite's table service: written once per message, pre-images first writer wins, binary
// pair lists that round-trip, keys for any correlation id, and pruning by age.

import {describe, expect, it} from 'vitest';
import {TableClient} from '@azure/data-tables';
import {decodeIds, encodeIds, escapeKey, maximumPreImageIds, TableLedgerStore} from '../../src/ledger/ledger-store.js';
import type {Settlement} from '../../src/ledger/ledger.js';
import {useLocalStack} from '../support/local-stack.js';

const local = useLocalStack({blob: true});
let tables = 0;

function store(): TableLedgerStore {
	return new TableLedgerStore(TableClient.fromConnectionString(local.azurite.connectionString, `ledgertest${++tables}`, {allowInsecureConnection: true}));
}

const id = (n: number) => `0000${n.toString(16).padStart(4, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

function settlement(correlationId: string, messageId: string): Settlement {
	return {
		correlationId,
		messageId,
		origin: 'requeue',
		pairs: 3,
		linked: 1,
		alreadyLinked: 0,
		removed: 0,
		alreadyAbsent: 0,
		deadLetter: 1,
		deadLetters: {'not-found': 1},
		requeued: 1,
		linkedPairs: [{accessPackageId: id(1), incompatibleAccessPackageId: id(2)}],
		removedPairs: [],
		foundLinked: [{accessPackageId: id(3), incompatibleAccessPackageId: id(4)}],
		foundAbsent: [],
		withoutPreImage: 2,
		settledAt: new Date('2026-12-02T10:00:00.000Z'),
	};
}

describe('TableLedgerStore', () => {
	it('records a message once: a redelivered message is not counted again', async () => {
		const ledger = store();
		const first = settlement('import/1#?%', 'message-1');
		expect(await ledger.settle(first)).toBe('recorded');
		expect(await ledger.settle({...first, linked: 99})).toBe('already-recorded');
		expect(await ledger.readSettlements('import/1#?%')).toEqual([first]);
		expect(await ledger.readSettlements('import/1#?')).toEqual([]);
	});

	it('keeps group rules apart from package rules through the binary lists and the pre-images', async () => {
		const ledger = store();
		const withGroups: Settlement = {
			...settlement('import-groups', 'message-1'),
			linkedPairs: [{accessPackageId: id(1), incompatibleAccessPackageId: id(2)}, {accessPackageId: id(1), incompatibleGroupId: id(2)}],
			foundAbsent: [{accessPackageId: id(3), incompatibleGroupId: id(4)}],
		};
		await ledger.settle(withGroups);
		expect(await ledger.readSettlements('import-groups')).toEqual([withGroups]);
		await ledger.createPreImage('import-groups', id(1), [id(2)]);
		await ledger.createPreImage('import-groups', `${id(1)}|groups`, [id(7)]);
		expect(await ledger.readPreImages('import-groups')).toEqual(new Map([[id(1), [id(2)]], [`${id(1)}|groups`, [id(7)]]]));
	});

	it('keeps the first pre-image stored: a later reader gets it, not its own', async () => {
		const ledger = store();
		const earlier = [id(7), id(8)];
		expect(await ledger.createPreImage('import-2', id(1), earlier)).toEqual(earlier);
		expect(await ledger.createPreImage('import-2', id(1), [id(7), id(8), id(9)])).toEqual(earlier);
		expect(await ledger.readPreImage('import-2', id(1))).toEqual(earlier);
		expect(await ledger.readPreImage('import-2', id(2))).toBeUndefined();
	});

	it('stores a pre-image larger than one binary property (split over several)', async () => {
		const ledger = store();
		const many = Array.from({length: maximumPreImageIds}, (_, index) => id(index + 1));
		await ledger.createPreImage('import-3', id(1), many);
		expect(await ledger.readPreImage('import-3', id(1))).toEqual(many);
		// A message's lists at their largest: 1,000 pairs.
		const pairs = Array.from({length: 1000}, (_, index) => ({accessPackageId: id(index + 1), incompatibleAccessPackageId: id(index + 2)}));
		const full = {...settlement('import-3', 'm1'), pairs: 1000, linked: 1000, linkedPairs: pairs, foundLinked: []};
		await ledger.settle(full);
		expect((await ledger.readSettlements('import-3'))[0]?.linkedPairs).toEqual(pairs);
	});

	it('lists imports newest first, and replaces an import row', async () => {
		const ledger = store();
		const base = {source: 'pairs.csv', pairs: 10, invalidRows: 1, duplicateRows: 0, state: 'enqueuing' as const};
		await ledger.recordImport({...base, correlationId: 'old', startedAt: new Date('2026-12-01T00:00:00Z')});
		await ledger.recordImport({...base, correlationId: 'new', startedAt: new Date('2026-12-02T00:00:00Z'), undoOf: 'old'});
		await ledger.recordImport({...base, correlationId: 'old', startedAt: new Date('2026-12-01T00:00:00Z'), pairs: 12, state: 'enqueued'});
		expect((await ledger.listImports()).map(record => [record.correlationId, record.pairs, record.state, record.undoOf])).toEqual([
			['new', 10, 'enqueuing', 'old'],
			['old', 12, 'enqueued', undefined],
		]);
	});

	it('prunes rows last written before the cutoff, at most once a day', async () => {
		const ledger = store();
		await ledger.settle(settlement('import-4', 'm1'));
		await ledger.createPreImage('import-4', id(1), []);
		await ledger.recordImport({correlationId: 'import-4', source: 's', pairs: 3, invalidRows: 0, duplicateRows: 0, startedAt: new Date(), state: 'enqueued'});
		const now = new Date();
		expect(await ledger.pruneIfDue(new Date(now.getTime() - 86_400_000), now)).toBe(0);
		expect(await ledger.readSettlements('import-4')).toHaveLength(1);
		// Within a day of the last prune nothing is looked at, whatever the cutoff.
		expect(await ledger.pruneIfDue(new Date(now.getTime() + 60_000), now)).toBe(0);
		const tomorrow = new Date(now.getTime() + 86_400_000);
		expect(await ledger.pruneIfDue(new Date(now.getTime() + 60_000), tomorrow)).toBe(3);
		expect(await ledger.readSettlements('import-4')).toEqual([]);
		expect(await ledger.readImport('import-4')).toBeUndefined();
	});
});

describe('keys and encodings', () => {
	it('escapes what a table key may not hold, keeping distinct ids distinct', () => {
		expect(escapeKey('plain-id_1.2')).toBe('plain-id_1.2');
		expect(escapeKey('a/b\\c#d?e%f')).toBe('a%2Fb%5Cc%23d%3Fe%25f');
		expect(escapeKey('%2F')).not.toBe(escapeKey('/'));
	});

	it('GUIDs round-trip through 16 bytes each', () => {
		const ids = [id(1), 'c0a74b4d-2694-4d5d-a964-1bee4ff0aaf2'];
		expect(encodeIds(ids)).toHaveLength(32);
		expect(decodeIds(encodeIds(ids))).toEqual(ids);
	});
});
