import {describe, expect, it} from 'vitest';
import {PendingQueue} from '../../src/engine/pending-queue.js';

describe('PendingQueue', () => {
	it('hands out run by run, earliest deadline first, in the order entries came within a run', () => {
		const queue = new PendingQueue<string>();
		const [a, b, c] = [{}, {}, {}];
		queue.add('c1', c, 3000);
		queue.add('a1', a, 1000);
		queue.add('c2', c, 3000);
		queue.add('b1', b, 2000);
		queue.add('a2', a, 1000);
		expect(queue.size).toBe(5);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['a1', 'a2', 'b1', 'c1', 'c2']);
		expect(queue.size).toBe(0);
	});

	it('serves runs due at the same moment one after another, in the order they first sent, not interleaved', () => {
		// The host hands over a batch of messages in one go: their deadlines tie to the millisecond.
		const queue = new PendingQueue<string>();
		const [first, second] = [{}, {}];
		queue.add('first-1', first, 1000);
		queue.add('second-1', second, 1000);
		queue.add('first-2', first, 1000);
		queue.add('second-2', second, 1000);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['first-1', 'first-2', 'second-1', 'second-2']);
	});

	it('keeps a run its place when it sends again after its work had all left (a retry after a failure)', () => {
		const queue = new PendingQueue<string>();
		const [first, second] = [{}, {}];
		queue.add('first-1', first, 1000);
		expect(queue.take(1)).toEqual(['first-1']);
		queue.add('second-1', second, 1000);
		queue.add('first-retry', first, 1000, true);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['first-retry', 'second-1']);
	});

	it('puts started work ahead of new work of the same run only, in the order it came', () => {
		const queue = new PendingQueue<string>();
		const [soon, later] = [{}, {}];
		queue.add('soon', soon, 1000);
		queue.add('new', later, 2000);
		queue.add('retry', later, 2000, true);
		queue.add('verify', later, 2000, true);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual(['soon', 'retry', 'verify', 'new']);
	});

	it('takes across runs up to the count asked, leaving the rest in order', () => {
		const queue = new PendingQueue<number>();
		const [a, b, c] = [{}, {}, {}];
		for (let index = 0; index < 5; index++) {
			queue.add(index, a, 1000);
			queue.add(10 + index, b, 2000);
		}

		expect(queue.take(3)).toEqual([0, 1, 2]);
		expect(queue.take(4)).toEqual([3, 4, 10, 11]);
		expect(queue.size).toBe(3);
		queue.add(99, c, 500);
		expect(queue.take(10)).toEqual([99, 12, 13, 14]);
		expect(queue.take(1)).toEqual([]);
	});

	it('removes every entry of one run, started work first, and keeps the others in order', () => {
		const queue = new PendingQueue<number>();
		const [a, b] = [{}, {}];
		queue.add(1, a, 1000);
		queue.add(2, b, 1000);
		queue.add(3, a, 1000, true);
		queue.add(4, b, 2000);
		expect(queue.remove(a)).toEqual([3, 1]);
		expect(queue.remove(a)).toEqual([]);
		expect(queue.size).toBe(2);
		expect(queue.take(Number.POSITIVE_INFINITY)).toEqual([2, 4]);
	});

	it('keeps order across many entries taken a few at a time (the head index compacts)', () => {
		const queue = new PendingQueue<number>();
		const run = {};
		for (let index = 0; index < 5000; index++) {
			queue.add(index, run, 1000);
		}

		const taken: number[] = [];
		while (queue.size > 0) {
			taken.push(...queue.take(7));
			if (taken.length === 2100) {
				queue.add(5000, run, 1000);
			}
		}

		expect(taken).toEqual(Array.from({length: 5001}, (_, index) => index));
	});
});
