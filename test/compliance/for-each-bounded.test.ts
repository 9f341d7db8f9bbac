import {describe, expect, it} from 'vitest';
import {forEachBounded} from '../../src/compliance/for-each-bounded.js';

const tick = async () => new Promise(resolve => setImmediate(resolve));

describe('forEachBounded', () => {
	it('runs every item once, never more than `concurrency` at a time', async () => {
		let running = 0;
		let peak = 0;
		const seen: number[] = [];
		await forEachBounded(Array.from({length: 50}, (_, index) => index), 4, async item => {
			running++;
			peak = Math.max(peak, running);
			await tick();
			seen.push(item);
			running--;
		});
		expect(peak).toBe(4);
		expect(seen.sort((a, b) => a - b)).toEqual(Array.from({length: 50}, (_, index) => index));
	});

	it('starts no task for an item before a slot frees: a million items cost `concurrency` tasks at once', async () => {
		let started = 0;
		let release!: () => void;
		const gate = new Promise<void>(resolve => {
			release = resolve;
		});
		const done = forEachBounded(Array.from({length: 1_000_000}, (_, index) => index), 3, async () => {
			started++;
			await gate;
		});
		await tick();
		expect(started).toBe(3);
		release();
		await done;
		expect(started).toBe(1_000_000);
	});

	it('stops handing out items after a rejection and throws it once the tasks in progress settle', async () => {
		let started = 0;
		let settledAfterFailure = 0;
		const failure = new Error('401');
		await expect(
			forEachBounded(Array.from({length: 100}, (_, index) => index), 2, async item => {
				started++;
				await tick();
				if (item === 3) {
					throw failure;
				}

				settledAfterFailure++;
			}),
		).rejects.toBe(failure);
		expect(started).toBeLessThan(10);
		expect(settledAfterFailure).toBeGreaterThan(0);
	});

	it('does nothing for no items', async () => {
		await expect(forEachBounded([], 8, async () => {
			throw new Error('never');
		})).resolves.toBeUndefined();
	});
});
