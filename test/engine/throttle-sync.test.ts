// ThrottleSync on fake timers: when it reads the shared state, and what it takes from it.

import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest';
import {systemClock} from '../../src/engine/clock.js';
import {InProcessThrottleStore, probeLeaseMs, type ThrottleNews, type ThrottleSnapshot, type ThrottleStore} from '../../src/engine/shared-throttle.js';
import {ThrottleGate} from '../../src/engine/throttle-gate.js';
import {ThrottleSync} from '../../src/engine/throttle-sync.js';
import {ThroughputControl} from '../../src/engine/throughput-control.js';
import {LinkEngine} from '../../src/engine/link-engine.js';
import {emptyThrottleRecord} from '../../src/engine/shared-throttle.js';
import type {LinkGateway} from '../../src/graph/link-gateway.js';

/** The in-process store, noting when each exchange happened. */
class WatchedStore implements ThrottleStore {
	readonly inner = new InProcessThrottleStore();
	readonly exchanges: number[] = [];

	async exchange(instanceId: string, news: ThrottleNews | undefined, now: number, leaving?: boolean): Promise<ThrottleSnapshot> {
		this.exchanges.push(now);
		return this.inner.exchange(instanceId, news, now, leaving);
	}
}

/** A gateway that accepts everything and notes when each request left. */
function recordingGateway(): {gateway: LinkGateway; starts: number[]} {
	const starts: number[] = [];
	const gateway: LinkGateway = {
		execute: async () => ({kind: 'ok', value: undefined}),
		async executeBatch(operations) {
			starts.push(Date.now());
			return operations.map(() => ({kind: 'ok', value: undefined}));
		},
	};
	return {gateway, starts};
}

const pairsOf = (count: number) =>
	Array.from({length: count}, (_, index) => ({
		accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
		incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(index + 100).padStart(12, '0')}`,
	}));

function instance(store: ThrottleStore) {
	const gate = new ThrottleGate();
	const control = new ThroughputControl({maxConcurrency: 8});
	const sync = new ThrottleSync({store, gate, control, clock: systemClock});
	return {gate, control, sync};
}

describe('ThrottleSync', () => {
	beforeEach(() => {
		vi.useFakeTimers({now: 1_000_000});
	});

	afterEach(() => {
		vi.useRealTimers();
	});

	it('reads the shared state each second while busy, and once more just before the gate reopens', async () => {
		const store = new WatchedStore();
		const {sync} = instance(store);
		sync.setBusy(true);
		await vi.advanceTimersByTimeAsync(0);
		const start = Date.now();
		sync.publish({reopenAt: start + 2500, sentAt: start, closedAt: start, pace: {rate: 100, ceiling: Number.POSITIVE_INFINITY, setAt: start + 2500}});
		await vi.advanceTimersByTimeAsync(3000);
		sync.setBusy(false);
		await vi.advanceTimersByTimeAsync(0);
		const offsets = store.exchanges.map(at => at - start);
		// Start, the publish, each second, 150 ms before the reopening, and leaving.
		expect(offsets).toEqual([0, 0, 1000, 2000, 2350, 3000, 3000]);
	});

	it('gives a second instance the averaged pace of a burst both saw, before its gate reopens', async () => {
		const store = new InProcessThrottleStore();
		const a = instance(store);
		const b = instance(store);
		a.sync.setBusy(true);
		b.sync.setBusy(true);
		// a probed alone for the first pace; b joined when its lease ran out. Both send now.
		await vi.advanceTimersByTimeAsync(probeLeaseMs);
		expect(b.sync.joined).toBe(true);
		const now = Date.now();
		const reopenAt = now + 1500;
		// Each saw the same burst and estimated its own share differently (per instance: 2 instances working).
		a.sync.publish({reopenAt, sentAt: now, closedAt: now, pace: {rate: 150, ceiling: Number.POSITIVE_INFINITY, setAt: reopenAt}});
		await vi.advanceTimersByTimeAsync(10);
		b.sync.publish({reopenAt, sentAt: now - 5, closedAt: now + 10, pace: {rate: 50, ceiling: Number.POSITIVE_INFINITY, setAt: reopenAt}});
		await vi.advanceTimersByTimeAsync(1400);
		// The app's pace is the mean of 300/s and 100/s; each paces at half of it.
		expect(a.control.pace?.rate).toBeCloseTo(100, 9);
		expect(b.control.pace?.rate).toBeCloseTo(100, 9);
		expect(a.gate.reopenAt).toBe(reopenAt);
		expect(b.gate.reopenAt).toBe(reopenAt);
		a.sync.setBusy(false);
		b.sync.setBusy(false);
		await vi.advanceTimersByTimeAsync(0);
	});

	it('holds the first request until the first exchange, then starts at its share of the concurrency', async () => {
		// A slow storage account, and three other instances already working.
		const others = {a: 0, b: 0, c: 0};
		const store: ThrottleStore = {
			async exchange(instanceId, _news, now) {
				await new Promise(resolve => setTimeout(resolve, 300));
				const record = {...emptyThrottleRecord, instances: {...Object.fromEntries(Object.keys(others).map(id => [id, now])), [instanceId]: now}};
				return {record, instances: 4};
			},
		};
		const {gateway, starts} = recordingGateway();
		const engine = new LinkEngine({gateway, maxConcurrency: 8, throttleStore: store});
		const begun = Date.now();
		const running = engine.run(pairsOf(40), 'add', {deadline: begun + 60_000});
		await vi.advanceTimersByTimeAsync(299);
		expect(starts).toEqual([]);
		expect(engine.control.concurrency).toBe(4);
		await vi.advanceTimersByTimeAsync(1);
		expect(engine.control.concurrency).toBe(1); // Half of 8, among 4 instances.
		await vi.advanceTimersByTimeAsync(1000);
		const outcomes = await running;
		expect(outcomes.every(outcome => outcome.status === 'linked')).toBe(true);
		expect(starts[0]! - begun).toBeGreaterThanOrEqual(300);
	});

	it("holds a joining instance's first request while another probes, until the probe finds the pace", async () => {
		const store = new InProcessThrottleStore();
		const a = instance(store);
		const b = instance(store);
		a.sync.setBusy(true);
		await vi.advanceTimersByTimeAsync(0);
		const start = Date.now();
		expect(a.sync.joined).toBe(true); // The first to start probes.
		b.sync.setBusy(true);
		await vi.advanceTimersByTimeAsync(0);
		expect(b.sync.joined).toBe(false);
		await vi.advanceTimersByTimeAsync(300);
		const reopenAt = Date.now() + 1000;
		a.sync.publish({reopenAt, sentAt: Date.now() - 30, closedAt: Date.now(), pace: {rate: 200, ceiling: Number.POSITIVE_INFINITY, setAt: reopenAt}});
		await vi.advanceTimersByTimeAsync(699);
		expect(b.sync.joined).toBe(false);
		await vi.advanceTimersByTimeAsync(1); // b's next read, a second after its first.
		expect(b.sync.joined).toBe(true);
		expect(Date.now() - start).toBe(1000);
		expect(b.gate.reopenAt).toBe(reopenAt);
		expect(b.control.pace).toEqual(a.control.pace);
		a.sync.setBusy(false);
		b.sync.setBusy(false);
		await vi.advanceTimersByTimeAsync(0);
	});

	it('lets a joining instance go when the probe lease ends without a throttle event (Graph took all it was sent)', async () => {
		const store = new InProcessThrottleStore();
		const a = instance(store);
		a.sync.setBusy(true);
		await vi.advanceTimersByTimeAsync(0);
		const start = Date.now();
		await vi.advanceTimersByTimeAsync(500);
		const {gateway, starts} = recordingGateway();
		const engine = new LinkEngine({gateway, maxConcurrency: 8, throttleStore: store});
		const running = engine.run(pairsOf(10), 'add', {deadline: start + 60_000});
		await vi.advanceTimersByTimeAsync(1499);
		expect(starts).toEqual([]);
		await vi.advanceTimersByTimeAsync(1);
		expect(starts[0]! - start).toBe(probeLeaseMs);
		expect((await running).every(outcome => outcome.status === 'linked')).toBe(true);
		a.sync.setBusy(false);
		await vi.advanceTimersByTimeAsync(0);
	});

	it("waits at most a lease's length for a prober whose clock runs ahead", async () => {
		const store = new InProcessThrottleStore();
		// The prober's clock is a minute ahead of this machine's: its lease seems to end a minute from now.
		await store.exchange('prober', undefined, Date.now() + 60_000);
		const {gateway, starts} = recordingGateway();
		const engine = new LinkEngine({gateway, maxConcurrency: 8, throttleStore: store});
		const begun = Date.now();
		const running = engine.run(pairsOf(4), 'add', {deadline: begun + 120_000});
		await vi.advanceTimersByTimeAsync(probeLeaseMs);
		expect(starts[0]! - begun).toBe(probeLeaseMs);
		expect((await running).every(outcome => outcome.status === 'linked')).toBe(true);
	});

	it('does not wait longer than a second for a storage account that does not answer', async () => {
		const store: ThrottleStore = {exchange: async () => new Promise(() => undefined)};
		const {gateway, starts} = recordingGateway();
		const engine = new LinkEngine({gateway, throttleStore: store});
		const begun = Date.now();
		const running = engine.run(pairsOf(2), 'add', {deadline: begun + 60_000});
		await vi.advanceTimersByTimeAsync(2000);
		expect((await running).map(outcome => outcome.status)).toEqual(['linked', 'linked']);
		expect(starts[0]! - begun).toBe(1000);
	});
});
