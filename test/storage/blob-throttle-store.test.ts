// The shared throttle record in a real blob (Azurite): writers racing on its ETag converge on one record, whatever
// order their writes land in.

import {BlobServiceClient} from '@azure/storage-blob';
import {describe, expect, it} from 'vitest';
import {systemClock} from '../../src/engine/clock.js';
import {probeLeaseMs, probeWaitUntil, type ThrottleNews} from '../../src/engine/shared-throttle.js';
import {ThrottleGate} from '../../src/engine/throttle-gate.js';
import {ThrottleSync} from '../../src/engine/throttle-sync.js';
import {ThroughputControl} from '../../src/engine/throughput-control.js';
import {BlobThrottleStore} from '../../src/storage/blob-throttle-store.js';
import {useLocalStack} from '../support/local-stack.js';

const local = useLocalStack({blob: true});

function stores(count: number) {
	const container = BlobServiceClient.fromConnectionString(local.azurite.connectionString).getContainerClient(`state-${Date.now()}`);
	return Array.from({length: count}, () => new BlobThrottleStore(container, 'pairs.json'));
}

describe('BlobThrottleStore', () => {
	it('gives the probe lease to exactly one of several instances starting at once, and every one reads the same holder', async () => {
		const now = Date.now();
		const instances = stores(4);
		const ids = instances.map((_, index) => `instance-${index}`);
		const snapshots = await Promise.all(instances.map(async (store, index) => store.exchange(ids[index]!, undefined, now)));
		const again = await Promise.all(instances.map(async (store, index) => store.exchange(ids[index]!, undefined, now + 10)));
		const holders = new Set(again.map(snapshot => snapshot.record.probe?.instance));
		expect(holders.size).toBe(1);
		const holder = [...holders][0]!;
		expect(ids).toContain(holder);
		expect(again.every(snapshot => snapshot.instances === 4)).toBe(true);
		// The first writer of an empty record took it; those that lost the race merged on its record.
		expect(snapshots.filter(snapshot => snapshot.record.probe?.instance === holder).length).toBeGreaterThan(0);
		for (const id of ids) {
			expect(probeWaitUntil(again[0]!.record, id, now + 10)).toBe(id === holder ? 0 : again[0]!.record.probe!.until);
		}

		expect(again[0]!.record.probe!.until - again[0]!.record.probe!.since).toBe(probeLeaseMs);
	});

	it("keeps every instance's news of one burst: the estimates are averaged, and the gate is the latest", async () => {
		const now = Date.now();
		const [a, b] = stores(2);
		await a!.exchange('a', undefined, now);
		await b!.exchange('b', undefined, now);
		const news = (sentAt: number, closedAt: number, rate: number): ThrottleNews => ({
			reopenAt: closedAt + 1000,
			sentAt,
			closedAt,
			pace: {rate, ceiling: Number.POSITIVE_INFINITY, setAt: closedAt + 1000},
		});
		// After the lease both send; each met the burst with a request sent before the other's 429 came back.
		await Promise.all([a!.exchange('a', news(now + 2950, now + 3000, 100), now + 3000), b!.exchange('b', news(now + 2960, now + 3100, 300), now + 3100)]);
		const {record} = await a!.exchange('a', undefined, now + 3200);
		expect(record.reopenAt).toBe(now + 4100);
		expect(record.estimates).toBe(2);
		expect(record.pace?.rate).toBeCloseTo(((100 + 300) / 2) * 2, 9); // Each share times the two instances, averaged.
	});

	it('keeps news it could not write (every ETag race lost) and sends it again: 24 instances on one burst, the longest wait kept', async () => {
		const instances = stores(25);
		const now = Date.now();
		const syncs = instances.slice(0, 24).map(store => new ThrottleSync({store, gate: new ThrottleGate(), control: new ThroughputControl({maxConcurrency: 8}), clock: systemClock}));
		const unwritten: number[] = [];
		for (const [index, store] of instances.slice(0, 24).entries()) {
			const exchange = store.exchange.bind(store);
			store.exchange = async (...args) => {
				const snapshot = await exchange(...args);
				if (snapshot.written === false) {
					unwritten.push(index);
				}

				return snapshot;
			};
		}

		// Each saw the burst with its own Retry-After; the last one's is the longest.
		for (const [index, sync] of syncs.entries()) {
			sync.publish({reopenAt: now + 10_000 + index * 100, sentAt: now, closedAt: now + index, pace: undefined});
		}

		for (let round = 0; round < 20; round++) {
			// eslint-disable-next-line no-await-in-loop
			await Promise.all(syncs.map(async sync => sync.settled()));
		}

		const {record} = await instances[24]!.exchange('reader', undefined, Date.now());
		expect(record.reopenAt).toBe(now + 10_000 + 23 * 100);
		// The case under test happened: some exchanges lost every race, and their news still arrived.
		expect(unwritten.length).toBeGreaterThan(0);
	}, 60_000);
});
