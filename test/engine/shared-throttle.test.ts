import {afterEach, describe, expect, it, vi} from 'vitest';
import {LinkEngine} from '../../src/engine/link-engine.js';
import {scalePace} from '../../src/engine/pace.js';
import {
	clampThrottleRecord,
	emptyThrottleRecord,
	InProcessThrottleStore,
	instanceTimeoutMs,
	mergeThrottleRecord,
	parseThrottleRecord,
	probeLeaseMs,
	probeWaitUntil,
	recordBounds,
	serializeThrottleRecord,
	snapshotOf,
	type Pace,
	type ThrottleRecord,
	type ThrottleStore,
} from '../../src/engine/shared-throttle.js';
import type {CallResult, LinkGateway} from '../../src/graph/link-gateway.js';

const pace = {rate: 300, ceiling: Number.POSITIVE_INFINITY, setAt: 2000};

describe('mergeThrottleRecord', () => {
	it('lengthens the shared gate, never shortens it, and takes the pace of a new burst', () => {
		const first = mergeThrottleRecord(emptyThrottleRecord, 'a', {reopenAt: 2000, sentAt: 900, closedAt: 1000, pace}, 1000);
		expect(first).toEqual({reopenAt: 2000, closedAt: 1000, pace, estimates: 1, instances: {a: 1000}, probe: {instance: 'a', since: 1000, until: 1000 + probeLeaseMs}});
		const shorter = mergeThrottleRecord(first, 'b', {reopenAt: 1500, sentAt: 1200, closedAt: 1300, pace: undefined}, 1300);
		expect(shorter.reopenAt).toBe(2000);
		expect(shorter.pace).toEqual(pace);
	});

	it('lowers the pace once for one burst seen by many instances: their estimates are averaged, not applied in turn', () => {
		// Three instances working, none probing (the first one's lease has run out: all of them send).
		const working = {...['a', 'b', 'c'].reduce((record, id) => mergeThrottleRecord(record, id, undefined, 900), emptyThrottleRecord), probe: null};
		// Each instance's news carries its own share; the record scales it by the three instances working.
		const first = mergeThrottleRecord(working, 'a', {reopenAt: 2000, sentAt: 900, closedAt: 1000, pace: {rate: 100, ceiling: Number.POSITIVE_INFINITY, setAt: 2000}}, 1000);
		expect(first.pace).toEqual({rate: 300, ceiling: Number.POSITIVE_INFINITY, setAt: 2000});
		const secondFirst = mergeThrottleRecord(first, 'c', {reopenAt: 2000, sentAt: 920, closedAt: 1005, pace: {rate: 80, ceiling: Number.POSITIVE_INFINITY, setAt: 2000}}, 1005);
		expect(secondFirst.pace).toEqual({rate: 270, ceiling: Number.POSITIVE_INFINITY, setAt: 2000});
		expect(secondFirst.estimates).toBe(2);
		// An estimate that knows a ceiling (a decrease from the rate a paced 429 came at) outweighs floors: it stands alone.
		const sameBurst = mergeThrottleRecord(secondFirst, 'b', {reopenAt: 2100, sentAt: 950, closedAt: 1010, pace: {rate: 50, ceiling: 100, setAt: 2100}}, 1010);
		expect(sameBurst.pace).toEqual({rate: 150, ceiling: 300, setAt: 2000});
		expect(sameBurst.estimates).toBe(1);
		expect(sameBurst.reopenAt).toBe(2100);
		const third = mergeThrottleRecord(sameBurst, 'c', {reopenAt: 2000, sentAt: 990, closedAt: 1020, pace: {rate: 75, ceiling: 80, setAt: 2000}}, 1020);
		expect(third.pace?.rate).toBeCloseTo((150 + 225) / 2, 9);
		expect(third.pace?.ceiling).toBeCloseTo((300 + 240) / 2, 9);
		expect(third.estimates).toBe(2);
		// A floor that comes after changes nothing.
		expect(mergeThrottleRecord(third, 'a', {reopenAt: 2000, sentAt: 995, closedAt: 1030, pace: {rate: 10, ceiling: Number.POSITIVE_INFINITY, setAt: 2000}}, 1030).pace).toEqual(third.pace);
		const nextBurst = mergeThrottleRecord(third, 'b', {reopenAt: 5000, sentAt: 3000, closedAt: 3100, pace: {rate: 80, ceiling: 100, setAt: 5000}}, 3100);
		expect(nextBurst.pace?.rate).toBe(240);
		expect(nextBurst.estimates).toBe(1);
	});

	it('counts only instances with a fresh heartbeat', () => {
		const record = mergeThrottleRecord(emptyThrottleRecord, 'a', undefined, 0);
		expect(Object.keys(mergeThrottleRecord(record, 'b', undefined, instanceTimeoutMs - 1).instances)).toEqual(['a', 'b']);
		expect(Object.keys(mergeThrottleRecord(record, 'b', undefined, instanceTimeoutMs).instances)).toEqual(['b']);
	});

	it("scales a pace's refill with its rate, averages it over one burst's estimates, and keeps it through storage", () => {
		const working = {...mergeThrottleRecord(mergeThrottleRecord(emptyThrottleRecord, 'a', undefined, 900), 'b', undefined, 900), probe: null};
		const first = mergeThrottleRecord(working, 'a', {reopenAt: 2000, sentAt: 900, closedAt: 1000, pace: {rate: 200, ceiling: 200, setAt: 2000, refill: 150}}, 1000);
		expect(first.pace).toEqual({rate: 400, ceiling: 400, setAt: 2000, refill: 300});
		const sameBurst = mergeThrottleRecord(first, 'b', {reopenAt: 2000, sentAt: 950, closedAt: 1010, pace: {rate: 220, ceiling: 220, setAt: 2000, refill: 200}}, 1010);
		expect(sameBurst.pace).toEqual({rate: 420, ceiling: 420, setAt: 2000, refill: 350});
		expect(parseThrottleRecord(serializeThrottleRecord(sameBurst)).pace).toEqual(sameBurst.pace);
		expect(scalePace(sameBurst.pace!, 0.5)).toEqual({rate: 210, ceiling: 210, setAt: 2000, refill: 175});
	});

	it('gives the probe lease to the first instance that starts while none works, and ends it when that one leaves', () => {
		const first = mergeThrottleRecord(emptyThrottleRecord, 'a', undefined, 1000);
		expect(first.probe).toEqual({instance: 'a', since: 1000, until: 1000 + probeLeaseMs});
		const second = mergeThrottleRecord(first, 'b', undefined, 1100);
		expect(second.probe).toEqual(first.probe);
		const again = mergeThrottleRecord(second, 'a', undefined, 1500);
		expect(again.probe).toEqual(first.probe); // A heartbeat does not renew it.
		expect(mergeThrottleRecord(second, 'b', undefined, 1200, true).probe).toEqual(first.probe);
		const left = mergeThrottleRecord(second, 'a', undefined, 1200, true);
		expect(left.probe).toBeNull();
		// Everyone gone (heartbeats stale): the next to start probes again.
		const later = mergeThrottleRecord(left, 'c', undefined, 1200 + instanceTimeoutMs);
		expect(later.probe).toEqual({instance: 'c', since: 1200 + instanceTimeoutMs, until: 1200 + instanceTimeoutMs + probeLeaseMs});
		expect(parseThrottleRecord(serializeThrottleRecord(later))).toEqual(later);
		expect(parseThrottleRecord('{"probe":{"instance":7}}').probe).toBeNull();
	});

	it("makes a joining instance wait for another's probe only while the lease runs and the app has no pace", () => {
		const record = mergeThrottleRecord(emptyThrottleRecord, 'a', undefined, 100_000);
		const until = 100_000 + probeLeaseMs;
		expect(probeWaitUntil(record, 'b', 100_010)).toBe(until);
		expect(probeWaitUntil(record, 'a', 100_010)).toBe(0); // The prober itself.
		expect(probeWaitUntil(record, 'b', until)).toBe(0); // The lease ran out.
		const throttled = mergeThrottleRecord(record, 'a', {reopenAt: 101_500, sentAt: 100_200, closedAt: 100_500, pace}, 100_500);
		expect(probeWaitUntil(throttled, 'b', 100_600)).toBe(0); // The prober found the pace: join with it.
		// A 429 with too little evidence for a pace: still wait for the prober (the gate holds everyone meanwhile).
		expect(probeWaitUntil({...record, reopenAt: 101_500, closedAt: 100_500}, 'b', 100_600)).toBe(until);
	});

	it("takes the prober's first estimate as the app's: the instances that joined meanwhile sent nothing", () => {
		const probing = mergeThrottleRecord(emptyThrottleRecord, 'a', undefined, 1000);
		const joined = mergeThrottleRecord(mergeThrottleRecord(probing, 'b', undefined, 1050), 'c', undefined, 1100);
		const news = {reopenAt: 2300, sentAt: 1250, closedAt: 1300, pace: {rate: 400, ceiling: Number.POSITIVE_INFINITY, setAt: 2300}};
		expect(mergeThrottleRecord(joined, 'a', news, 1300).pace?.rate).toBe(400);
		// After the lease everyone sends: an estimate is of the sender's share again.
		const late = {...news, reopenAt: 4300, sentAt: 3100, closedAt: 3300, pace: {...news.pace, setAt: 4300}};
		expect(mergeThrottleRecord(joined, 'a', late, 3300).pace?.rate).toBe(1200);
	});

	it('restarts the climb of the pace when an instance starts after the app was idle', () => {
		const found = {rate: 400, ceiling: 400, setAt: 5000, refill: 400};
		const busy = mergeThrottleRecord(emptyThrottleRecord, 'a', {reopenAt: 5000, sentAt: 3000, closedAt: 3000, pace: found}, 3000);
		const idle = mergeThrottleRecord(busy, 'a', undefined, 20_000, true);
		expect(idle.pace).toEqual(found);
		// Fifteen idle seconds would have taken the climb far past the ceiling; the pace resumes where it was set.
		expect(mergeThrottleRecord(idle, 'b', undefined, 60_000).pace).toEqual({...found, setAt: 60_000});
		// An instance joining others who work takes the pace as it stands.
		const working = mergeThrottleRecord(idle, 'b', undefined, 60_000);
		expect(mergeThrottleRecord(working, 'c', undefined, 61_000).pace).toEqual({...found, setAt: 60_000});
	});

	it('stores an unknown ceiling as null and reads anything malformed as empty', () => {
		const record = mergeThrottleRecord(emptyThrottleRecord, 'a', {reopenAt: 2000, sentAt: 900, closedAt: 1000, pace}, 1000);
		expect(parseThrottleRecord(serializeThrottleRecord(record))).toEqual(record);
		expect(serializeThrottleRecord(record)).toContain('"ceiling":null');
		for (const text of ['', 'not json', '[]', '{"reopenAt":"soon","pace":{"rate":-1}}']) {
			expect(parseThrottleRecord(text)).toMatchObject({reopenAt: 0, pace: null});
		}
	});
});

describe('engines sharing one store', () => {
	function gateway(answer: () => CallResult<unknown>) {
		const starts: number[] = [];
		const one = async (): Promise<CallResult<unknown>> => {
			starts.push(Date.now());
			await new Promise(resolve => setTimeout(resolve, 10));
			return answer();
		};

		const link: LinkGateway = {execute: one, executeBatch: async operations => Promise.all(operations.map(one))};
		return {link, starts};
	}

	const pairs = (from: number) =>
		Array.from({length: 30}, (_, index) => ({
			accessPackageId: `00000000-0000-4000-8000-${String(from + index).padStart(12, '0')}`,
			incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(from + index + 500).padStart(12, '0')}`,
		}));

	it("shut every instance's gate when one of them is throttled", async () => {
		const store = new InProcessThrottleStore();
		let throttleNext = true;
		const first = gateway(() => {
			if (throttleNext) {
				throttleNext = false;
				return {kind: 'failed', failure: {kind: 'throttled', status: 429, message: 'slow down', retryAfterMs: 800}};
			}

			return {kind: 'ok', value: undefined};
		});
		const second = gateway(() => ({kind: 'ok', value: undefined}));
		const one = new LinkEngine({gateway: first.link, batchSize: 1, maxConcurrency: 1, throttleStore: store});
		const two = new LinkEngine({gateway: second.link, batchSize: 1, maxConcurrency: 1, throttleStore: store});
		const deadline = Date.now() + 10_000;
		const running = one.run(pairs(0), 'add', {deadline});
		await waitFor(() => one.gate.reopenAt > Date.now());
		await one.sync!.settled();
		const reopenAt = one.gate.reopenAt;
		const outcomes = await two.run(pairs(100), 'add', {deadline});
		expect(outcomes.every(outcome => outcome.status === 'linked')).toBe(true);
		// The second engine learnt of the 429 through the store: it sent nothing before the first one's gate reopened.
		expect(second.starts.filter(at => at < reopenAt)).toEqual([]);
		expect((await running).every(outcome => outcome.status === 'linked')).toBe(true);
	});

	it("starts a joining instance at its share of the app's pace instead of unpaced", async () => {
		const store = new InProcessThrottleStore();
		const now = Date.now();
		await store.exchange('other', {reopenAt: now, sentAt: now - 10, closedAt: now, pace: {rate: 200, ceiling: 240, setAt: now}}, now);
		const fake = gateway(() => ({kind: 'ok', value: undefined}));
		const engine = new LinkEngine({gateway: fake.link, batchSize: 1, throttleStore: store});
		expect(engine.control.rate).toBe(Number.POSITIVE_INFINITY);
		const running = engine.run(pairs(0), 'add', {deadline: Date.now() + 10_000});
		await engine.sync!.settled();
		// Two instances work now (the other's heartbeat is fresh): this one paces at half the app's rate.
		expect(engine.sync!.instances).toBe(2);
		expect(engine.control.pace).toEqual({rate: 100, ceiling: 120, setAt: now});
		await running;
	});

	it('carries on alone, with one warning and nothing lost, when the store cannot be reached', async () => {
		const broken: ThrottleStore = {
			async exchange() {
				throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {code: 'ECONNREFUSED'});
			},
		};
		const warnings: string[] = [];
		const fake = gateway(() => ({kind: 'ok', value: undefined}));
		const engine = new LinkEngine({gateway: fake.link, batchSize: 1, throttleStore: broken, onWarning: message => warnings.push(message)});
		const outcomes = await engine.run(pairs(0), 'add', {deadline: Date.now() + 10_000});
		await engine.run(pairs(200), 'add', {deadline: Date.now() + 10_000});
		expect(outcomes.every(outcome => outcome.status === 'linked')).toBe(true);
		expect(warnings).toEqual([expect.stringMatching(/shared throttle state cannot be reached \(ECONNREFUSED: connect ECONNREFUSED.*paces on its own/)]);
		expect(engine.sync!.degraded).toBe(true);
	});
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
	const until = Date.now() + timeoutMs;
	while (!condition()) {
		if (Date.now() > until) {
			throw new Error('timed out waiting');
		}

		// eslint-disable-next-line no-await-in-loop
		await new Promise(resolve => setTimeout(resolve, 5));
	}
}

describe('the shared record as input: peers whose clocks are wrong, and values edited by hand', () => {
	const now = 1_000_000_000_000;
	const minute = 60_000;
	const day = 24 * 60 * minute;
	const pace = (fields: Partial<Pace> = {}): Pace => ({rate: 50, ceiling: 60, setAt: now - 1000, ...fields});
	const record = (fields: Partial<ThrottleRecord>): ThrottleRecord => ({...emptyThrottleRecord, ...fields});

	it.each([
		['a gate shut for a day by a peer a day ahead', record({reopenAt: now + day}), (read: ThrottleRecord) => expect(read.reopenAt).toBe(now + recordBounds.maximumWaitMs)],
		['a gate in the past (a peer behind)', record({reopenAt: now - day}), (read: ThrottleRecord) => expect(read.reopenAt).toBe(now - day)],
		['a burst recorded in the future', record({closedAt: now + day}), (read: ThrottleRecord) => expect(read.closedAt).toBe(now)],
		['a pace set a month ahead', record({pace: pace({setAt: now + 30 * day}), estimates: 1}), (read: ThrottleRecord) => expect(read.pace?.setAt).toBe(now)],
		['a pace set when a shut gate reopens', record({reopenAt: now + 2000, pace: pace({setAt: now + 2000}), estimates: 1}), (read: ThrottleRecord) => expect(read.pace?.setAt).toBe(now + 2000)],
		['a rate of 1e-300', record({pace: pace({rate: 1e-300}), estimates: 1}), (read: ThrottleRecord) => expect(read.pace).toBeNull()],
		['a rate of 1e300', record({pace: pace({rate: 1e300}), estimates: 1}), (read: ThrottleRecord) => expect(read.pace).toBeNull()],
		['a ceiling of 1e-300', record({pace: pace({ceiling: 1e-300}), estimates: 1}), (read: ThrottleRecord) => expect(read.pace?.ceiling).toBe(Number.POSITIVE_INFINITY)],
		['a refill of 1e300', record({pace: pace({refill: 1e300}), estimates: 1}), (read: ThrottleRecord) => expect(read.pace).not.toHaveProperty('refill')],
		['a probe lease a day long', record({probe: {instance: 'x', since: now + day, until: now + day}}), (read: ThrottleRecord) => expect(read.probe).toEqual({instance: 'x', since: now, until: now + probeLeaseMs})],
	])('bounds %s to what the reader\'s clock allows', (_name, stored, check) => {
		check(clampThrottleRecord(stored, now));
	});

	it('does not count heartbeats from far in the future, and forgets near-future ones soon after they stop', () => {
		const instances: Record<string, number> = {ahead: now + minute, forged: now + 365 * day};
		for (let index = 0; index < 1000; index++) {
			instances[`phantom-${index}`] = now + 10 * day;
		}

		const merged = mergeThrottleRecord(record({instances}), 'me', undefined, now);
		expect(Object.keys(merged.instances).sort()).toEqual(['ahead', 'me']);
		expect(snapshotOf(merged, now).instances).toBe(2);
		// Once its clock's minute has passed in ours plus the timeout, the instance ahead is gone.
		expect(snapshotOf(mergeThrottleRecord(merged, 'me', undefined, now + minute + instanceTimeoutMs), now + minute + instanceTimeoutMs).instances).toBe(1);
	});

	it('counts at most 1,000 instances, the most recent', () => {
		const instances: Record<string, number> = {};
		for (let index = 0; index < 5000; index++) {
			instances[`i-${index}`] = now - index;
		}

		const clamped = clampThrottleRecord(record({instances}), now);
		expect(Object.keys(clamped.instances)).toHaveLength(recordBounds.maximumInstances);
		expect(clamped.instances['i-0']).toBe(now);
		expect(clamped.instances['i-4999']).toBeUndefined();
	});

	it('reads a record larger than 256 KiB as empty, without parsing it', () => {
		const huge = serializeThrottleRecord(record({reopenAt: now, instances: Object.fromEntries(Array.from({length: 20_000}, (_, index) => [`instance-${index}`, now]))}));
		expect(huge.length).toBeGreaterThan(recordBounds.maximumRecordBytes);
		expect(parseThrottleRecord(huge)).toEqual(emptyThrottleRecord);
	});
});

describe('an engine reading a hostile record', () => {
	const pairsOf = (count: number) =>
		Array.from({length: count}, (_, index) => ({
			accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
			incompatibleAccessPackageId: `00000000-0000-4000-8000-${String(index + 100).padStart(12, '0')}`,
		}));

	afterEach(() => {
		vi.useRealTimers();
	});

	it('paces a 5 s run and ends it by its deadline when a peer a month ahead set the pace: no sleep for the skew, no timer overflow', async () => {
		vi.useFakeTimers({now: 1_000_000_000_000});
		const store = new InProcessThrottleStore();
		// The gate is open again; the pace was set "now" by a peer whose clock runs a month ahead.
		const now = Date.now();
		const ahead = now + 30 * 24 * 3_600_000;
		await store.exchange('peer', {reopenAt: now - 1000, sentAt: now - 2000, closedAt: now - 1500, pace: {rate: 50, ceiling: 50, setAt: ahead}}, now);
		const sent: number[] = [];
		const gateway: LinkGateway = {
			async execute() {
				sent.push(Date.now());
				return {kind: 'ok', value: undefined};
			},
			async executeBatch(operations) {
				sent.push(...operations.map(() => Date.now()));
				return operations.map(() => ({kind: 'ok', value: undefined}));
			},
		};
		const engine = new LinkEngine({gateway, maxConcurrency: 4, throttleStore: store});
		const running = engine.run(pairsOf(60), 'add', {deadline: now + 5000});
		await vi.advanceTimersByTimeAsync(5000);
		const outcomes = await running;
		expect(outcomes.every(outcome => outcome.status === 'linked')).toBe(true);
		// Paced at the shared 50/s (shared by the two instances counted: 25/s here), not sent all at once: 60 pairs take
		// more than a second, and all leave before the deadline.
		expect(Math.max(...sent) - Math.min(...sent)).toBeGreaterThan(1000);
		expect(Math.max(...sent) - now).toBeLessThanOrEqual(5000);
	});
});
