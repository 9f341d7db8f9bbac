import {describe, expect, it} from 'vitest';
import {PendingQueue} from '../../src/engine/pending-queue.js';

describe('PendingQueue', () => {
	it('hands out the earliest deadline first, in the order entries came within one deadline', () => {
		const queue = new PendingQueue<string>();
		queue.add('c1', 3000);
		queue.add('a1', 1000);
		queue.add('c2', 3000);
		queue.add('b1', 2000);
		queue.add('a2', 1000);
		expect(queue.size).toBe(5);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['a1', 'a2', 'b1', 'c1', 'c2']);
		expect(queue.size).toBe(0);
	});

	it('puts started work ahead of new work of the same deadline only, in the order it came', () => {
		const queue = new PendingQueue<string>();
		queue.add('soon', 1000);
		queue.add('new', 2000);
		queue.add('retry', 2000, true);
		queue.add('verify', 2000, true);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['soon', 'retry', 'verify', 'new']);
	});

	it('takes across deadlines up to the count asked, leaving the rest in order', () => {
		const queue = new PendingQueue<number>();
		for (let index = 0; index < 5; index++) {
			queue.add(index, 1000);
			queue.add(10 + index, 2000);
		}

		expect(queue.take(3)).toEqual([0, 1, 2]);
		expect(queue.take(4)).toEqual([3, 4, 10, 11]);
		expect(queue.size).toBe(3);
		queue.add(99, 500);
		expect(queue.take(10)).toEqual([99, 12, 13, 14]);
		expect(queue.take(1)).toEqual([]);
	});

	it('removes the entries of one deadline that match, keeping the others and their order', () => {
		const queue = new PendingQueue<{run: string; id: number}>();
		queue.add({run: 'a', id: 1}, 1000);
		queue.add({run: 'b', id: 2}, 1000);
		queue.add({run: 'a', id: 3}, 1000, true);
		queue.add({run: 'a', id: 4}, 2000);
		expect(queue.remove(1000, entry => entry.run === 'a').map(entry => entry.id)).toEqual([3, 1]);
		expect(queue.remove(3000, () => true)).toEqual([]);
		expect(queue.size).toBe(2);
		expect(queue.take(Number.POSITIVE_INFINITY).map(entry => entry.id)).toEqual([2, 4]);
	});

	it('drops a deadline emptied by removal, so that a later entry of it queues afresh in its place', () => {
		const queue = new PendingQueue<string>();
		queue.add('x', 2000);
		queue.add('y', 1000);
		queue.remove(1000, () => true);
		queue.add('z', 1000);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['z', 'x']);
	});

	it('keeps order across many entries taken a few at a time (the head index compacts)', () => {
		const queue = new PendingQueue<number>();
		for (let index = 0; index < 5000; index++) {
			queue.add(index, 1000);
		}

		const taken: number[] = [];
		while (queue.size > 0) {
			taken.push(...queue.take(7));
			if (taken.length === 2100) {
				queue.add(5000, 1000);
			}
		}

		expect(taken).toEqual(Array.from({length: 5001}, (_, index) => index));
	});
});
