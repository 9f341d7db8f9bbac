import {afterEach, beforeEach, describe, expect, it, vi} from 'vitest';
import {ThrottleGate} from '../../src/engine/throttle-gate.js';

describe('ThrottleGate', () => {
	beforeEach(() => {
		vi.useFakeTimers({now: Date.parse('2026-11-30T10:00:00Z')});
	});

	afterEach(() => {
		vi.useRealTimers();
	});

	async function openedAfter(gate: ThrottleGate): Promise<number> {
		const start = Date.now();
		let openedAt: number | undefined;
		void gate.whenOpen().then(() => {
			openedAt = Date.now();
		});
		await vi.runAllTimersAsync();
		expect(openedAt).toBeDefined();
		return openedAt! - start;
	}

	it('is open until a 429 closes it', async () => {
		const gate = new ThrottleGate();
		expect(gate.isOpen()).toBe(true);
		expect(await openedAfter(gate)).toBe(0);
	});

	it('opens exactly at the Retry-After target', async () => {
		const gate = new ThrottleGate();
		gate.close(2128, Date.now());
		expect(gate.isOpen()).toBe(false);
		expect(await openedAfter(gate)).toBe(2128);
		expect(gate.isOpen()).toBe(true);
	});

	it('is never shortened by a later, shorter Retry-After, and is extended by a longer one while waiting', async () => {
		const gate = new ThrottleGate();
		const start = Date.now();
		gate.close(3000, start);
		gate.close(1000, start);
		let openedAt: number | undefined;
		void gate.whenOpen().then(() => {
			openedAt = Date.now();
		});
		await vi.advanceTimersByTimeAsync(2000);
		gate.close(4000, Date.now()); // A penalty extension: now + 4 s = 6 s after start.
		await vi.runAllTimersAsync();
		expect(openedAt! - start).toBe(6000);
	});

	it('backs off exponentially without Retry-After, and starts afresh after a success', async () => {
		const gate = new ThrottleGate({backoff: {baseMs: 1000, maximumMs: 60_000}, random: () => 1});
		const waits: number[] = [];
		for (let index = 0; index < 3; index++) {
			gate.close(undefined, Date.now());
			// eslint-disable-next-line no-await-in-loop
			waits.push(await openedAfter(gate));
		}

		gate.recordSuccess();
		gate.close(undefined, Date.now());
		waits.push(await openedAfter(gate));
		expect(waits).toEqual([1000, 2000, 4000, 1000]);
	});

	it('counts a burst of 429s for requests sent before it closed as one', async () => {
		const gate = new ThrottleGate({backoff: {baseMs: 1000, maximumMs: 60_000}, random: () => 1});
		const sentAt = Date.now();
		await vi.advanceTimersByTimeAsync(10);
		for (let index = 0; index < 5; index++) {
			gate.close(undefined, sentAt);
		}

		expect(await openedAfter(gate)).toBe(1000);
		expect(gate.closes).toBe(5);
	});

	it('stops waiting when the signal aborts', async () => {
		const gate = new ThrottleGate();
		gate.close(60_000, Date.now());
		const controller = new AbortController();
		const waiting = gate.whenOpen(controller.signal);
		controller.abort(new Error('shutdown'));
		await expect(waiting).rejects.toThrow('shutdown');
	});
});
