// The worker's side of the ledger, on a store that fails when told to: it never throws at the worker, keeps what it
// could not write and writes it once the store is back, warns once per outage, bounds what it keeps, reads each
// package's pre-image from Graph once per import however many messages ask at once, and trusts the first one stored.

import {describe, expect, it} from 'vitest';
import type {CallResult} from '../../src/graph/link-gateway.js';
import type {ImportRecord, Settlement} from '../../src/ledger/ledger.js';
import type {LedgerStore} from '../../src/ledger/ledger-store.js';
import {WorkerLedger, type LinkReader} from '../../src/ledger/worker-ledger.js';
import {SystemicFailure} from '../../src/engine/link-engine.js';
import {settlement} from '../support/settlements.js';

const id = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
const pair = (a: number, b: number) => ({accessPackageId: id(a), incompatibleAccessPackageId: id(b)});

/** Table storage's behaviour (create once, first pre-image wins) in memory, failing every call while `down`. */
class FlakyStore implements LedgerStore {
	down = false;
	readonly settled: string[] = [];
	readonly preImages = new Map<string, string[]>();
	calls = 0;

	async recordImport(_record: ImportRecord): Promise<void> {
		this.#call();
	}

	async readImport(): Promise<ImportRecord | undefined> {
		this.#call();
		return undefined;
	}

	async listImports(): Promise<ImportRecord[]> {
		this.#call();
		return [];
	}

	async settle(settlement: Settlement): Promise<'recorded' | 'already-recorded'> {
		this.#call();
		if (this.settled.includes(settlement.messageId)) {
			return 'already-recorded';
		}

		this.settled.push(settlement.messageId);
		return 'recorded';
	}

	async readSettlements(): Promise<Settlement[]> {
		this.#call();
		return [];
	}

	async readPreImages(correlationId: string): Promise<Map<string, string[]>> {
		this.#call();
		return new Map([...this.preImages].filter(([key]) => key.startsWith(`${correlationId}/`)).map(([key, ids]) => [key.slice(correlationId.length + 1), ids]));
	}

	async createPreImage(correlationId: string, accessPackageId: string, ids: readonly string[]): Promise<string[]> {
		this.#call();
		const key = `${correlationId}/${accessPackageId}`;
		if (!this.preImages.has(key)) {
			this.preImages.set(key, [...ids]);
		}

		return this.preImages.get(key)!;
	}

	async pruneIfDue(): Promise<number> {
		this.#call();
		return 0;
	}

	#call(): void {
		this.calls++;
		if (this.down) {
			throw new Error('connect ECONNREFUSED 127.0.0.1:10002');
		}
	}
}

function settled(messageId: string, pairs = 1): Settlement {
	return settlement({messageId, pairs, linked: pairs, settledAt: new Date(0)});
}

function clock(start = 0) {
	let now = start;
	return {now: () => now, advance: (ms: number) => (now += ms)};
}

describe('WorkerLedger: settlements', () => {
	it('keeps what it could not write, warns once, and writes it in order when the store is back', async () => {
		const store = new FlakyStore();
		const warnings: string[] = [];
		const time = clock();
		const ledger = new WorkerLedger(store, {warn: message => warnings.push(message), now: time.now});
		store.down = true;
		await ledger.settle(settled('m1'));
		await ledger.settle(settled('m2'));
		expect(ledger.backlog).toBe(2);
		expect(warnings).toEqual([expect.stringMatching(/^sod-sync ledger: the import ledger cannot be written \(connect ECONNREFUSED 127\.0\.0\.1:10002\); pairs are still applied/)]);
		// While paused after a failure, a settlement waits without trying the store.
		const calls = store.calls;
		await ledger.settle(settled('m3'));
		expect(store.calls).toBe(calls);
		store.down = false;
		time.advance(30_000);
		await ledger.settle(settled('m4'));
		expect(store.settled).toEqual(['m1', 'm2', 'm3', 'm4']);
		expect(ledger.backlog).toBe(0);
		expect(warnings[1]).toBe('sod-sync ledger: reachable again; every settlement kept meanwhile is recorded.');
	});

	it('flush tries the store even while paused, and says how many are left', async () => {
		const store = new FlakyStore();
		const ledger = new WorkerLedger(store, {warn: () => undefined, now: clock().now});
		store.down = true;
		await ledger.settle(settled('m1'));
		expect(await ledger.flush()).toBe(1);
		store.down = false;
		expect(await ledger.flush()).toBe(0);
		expect(store.settled).toEqual(['m1']);
	});

	it('bounds what it keeps: the oldest go, with a warning naming the pairs they held', async () => {
		const store = new FlakyStore();
		const warnings: string[] = [];
		const ledger = new WorkerLedger(store, {warn: message => warnings.push(message), now: clock().now, backlogSize: 2});
		store.down = true;
		for (const [index, pairs] of [10, 20, 30, 40].entries()) {
			// eslint-disable-next-line no-await-in-loop
			await ledger.settle(settled(`m${index}`, pairs));
		}

		expect(ledger.backlog).toBe(2);
		expect(warnings.slice(1)).toEqual([
			expect.stringMatching(/^sod-sync ledger: 1 settled messages \(10 pairs\) could not be recorded and were dropped from memory \(1 so far\)/),
			expect.stringMatching(/^sod-sync ledger: 1 settled messages \(20 pairs\) could not be recorded and were dropped from memory \(2 so far\)/),
		]);
		store.down = false;
		expect(await ledger.flush()).toBe(0);
		expect(store.settled).toEqual(['m2', 'm3']);
	});
});

describe('WorkerLedger: pre-images', () => {
	const reader = (answers: Record<string, CallResult<string[]>>) => {
		const reads: string[] = [];
		const read: LinkReader = async accessPackageId => {
			reads.push(accessPackageId);
			return answers[accessPackageId] ?? {kind: 'ok', value: []};
		};

		return {read, reads};
	};

	it('reads a package from Graph once per import, however many messages ask at once, and stores it', async () => {
		const store = new FlakyStore();
		const ledger = new WorkerLedger(store, {warn: () => undefined});
		const {read, reads} = reader({[id(1)]: {kind: 'ok', value: [id(9)]}});
		const messages = [0, 1, 2].map(() => ledger.preImages('import-1', [pair(1, 2), pair(1, 3), pair(2, 3)], read));
		const images = await Promise.all(messages.map(async images => Promise.all([images.get(id(1)), images.get(id(2))])));
		expect(images.every(([first, second]) => first?.has(id(9)) && second?.size === 0)).toBe(true);
		expect(reads.sort()).toEqual([id(1), id(2)]);
		expect(store.preImages.get(`import-1/${id(1)}`)).toEqual([id(9)]);
		// Another import reads again: a pre-image is the state before that import.
		await ledger.preImages('import-2', [pair(1, 2)], read).get(id(1));
		expect(reads).toHaveLength(3);
	});

	it('trusts what another instance stored first: read in one query where this process meets the import', async () => {
		const store = new FlakyStore();
		store.preImages.set(`import-1/${id(1)}`, [id(7)]);
		const ledger = new WorkerLedger(store, {warn: () => undefined});
		const {read, reads} = reader({[id(1)]: {kind: 'ok', value: [id(7), id(8)]}});
		expect([...(await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1)))!]).toEqual([id(7)]);
		expect(reads).toEqual([]);
	});

	it('an unknown package has no links; a read that fails leaves the package without one (read again next time)', async () => {
		const store = new FlakyStore();
		const ledger = new WorkerLedger(store, {warn: () => undefined});
		const {read, reads} = reader({
			[id(1)]: {kind: 'failed', failure: {kind: 'not-found', status: 404, message: 'gone'}},
			[id(2)]: {kind: 'failed', failure: {kind: 'throttled', status: 429, message: 'slow down', retryAfterMs: 1000}},
		});
		const images = ledger.preImages('import-1', [pair(1, 3), pair(2, 3)], read);
		expect((await images.get(id(1)))?.size).toBe(0);
		expect(await images.get(id(2))).toBeUndefined();
		expect(store.preImages.has(`import-1/${id(2)}`)).toBe(false);
		await ledger.preImages('import-1', [pair(2, 3)], read).get(id(2));
		expect(reads.filter(read => read === id(2))).toHaveLength(2);
	});

	it('with the store down, no pre-image and no Graph read until the pause is over', async () => {
		const store = new FlakyStore();
		const time = clock();
		const ledger = new WorkerLedger(store, {warn: () => undefined, now: time.now});
		const {read, reads} = reader({});
		store.down = true;
		expect(await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1))).toBeUndefined();
		expect(await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1))).toBeUndefined();
		expect(reads).toEqual([]);
		store.down = false;
		time.advance(30_000);
		expect((await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1)))?.size).toBe(0);
		expect(reads).toEqual([id(1)]);
	});

	it('meeting an import while the store is down, reads what other instances stored once the pause is over', async () => {
		const store = new FlakyStore();
		const time = clock();
		const ledger = new WorkerLedger(store, {warn: () => undefined, now: time.now});
		const {read, reads} = reader({[id(1)]: {kind: 'ok', value: [id(7), id(8)]}});
		store.down = true;
		expect(await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1))).toBeUndefined();
		expect(await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1))).toBeUndefined();
		// Meanwhile another instance stored its pre-image of the package: the one to trust, read without asking Graph.
		store.preImages.set(`import-1/${id(1)}`, [id(7)]);
		store.down = false;
		time.advance(30_000);
		expect([...(await ledger.preImages('import-1', [pair(1, 2)], read).get(id(1)))!]).toEqual([id(7)]);
		expect(reads).toEqual([]);
	});

	it('passes a refused credential on: the invocation must fail, not count without a pre-image', async () => {
		const ledger = new WorkerLedger(new FlakyStore(), {warn: () => undefined});
		const systemic = new SystemicFailure({kind: 'unauthorized', status: 401, message: 'Access token is empty or invalid.'});
		const images = ledger.preImages('import-1', [pair(1, 2)], async () => {
			throw systemic;
		});
		await expect(images.get(id(1))).rejects.toBe(systemic);
	});
});
