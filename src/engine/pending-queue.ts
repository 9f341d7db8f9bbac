// The order in which operations waiting for a request leave: earliest deadline first, and within one deadline (one
// run: an invocation's writes, its pre-image reads and its retries share it) work already started first, then the
// rest in the order it came.
//
// Why by deadline rather than first come: the host hands a worker a batch of messages at once and fetches the next
// batch only once few are left running (host.json's newBatchThreshold). Served first come, the operations of a batch
// interleave, every message of it finishes at about the same moment, and the host polls for the next batch into an
// idle gap (`npm run bench`'s faulty and latency-bound scenarios showed it as a quarter-second hole in Graph's
// answers). Served by deadline, messages settle one after another in the order they started, the next batch arrives
// while the last ones still run, and a run close to its deadline is never kept waiting by a younger one. Admission
// (`LinkEngine.admit`) already assumes that order: what a run may take is what its pace can send after everything
// held before it.

interface Lane<T> {
	readonly deadline: number;
	/** Work already started: a retry, a read that verifies a write, a list's next page. */
	readonly started: Fifo<T>;
	readonly fresh: Fifo<T>;
}

/**
 * @example
 * const queue = new PendingQueue<string>();
 * queue.add('late', 2000);
 * queue.add('soon', 1000);
 * queue.add('retry', 2000, true);
 * queue.take(3); // ['soon', 'retry', 'late']
 */
export class PendingQueue<T> {
	/** Lanes by deadline, soonest first; none empty. */
	#lanes: Array<Lane<T>> = [];
	readonly #byDeadline = new Map<number, Lane<T>>();
	#size = 0;

	get size(): number {
		return this.#size;
	}

	/** Queues `entry` under `deadline`: at the back of its run's started work when `started`, else of its new work. */
	add(entry: T, deadline: number, started = false): void {
		let lane = this.#byDeadline.get(deadline);
		if (!lane) {
			lane = {deadline, started: new Fifo(), fresh: new Fifo()};
			this.#byDeadline.set(deadline, lane);
			this.#lanes.splice(this.#laneIndex(deadline), 0, lane);
		}

		(started ? lane.started : lane.fresh).push(entry);
		this.#size++;
	}

	/** Removes and returns the next `count` entries (every one for Infinity), in the order they leave. */
	take(count: number): T[] {
		const taken: T[] = [];
		while (taken.length < count && this.#lanes.length > 0) {
			const lane = this.#lanes[0]!;
			lane.started.shiftInto(taken, count - taken.length);
			lane.fresh.shiftInto(taken, count - taken.length);
			if (lane.started.length === 0 && lane.fresh.length === 0) {
				this.#lanes.shift();
				this.#byDeadline.delete(lane.deadline);
			}
		}

		this.#size -= taken.length;
		return taken;
	}

	/** Removes and returns the entries under `deadline` that `matches` selects, keeping the others in order. */
	remove(deadline: number, matches: (entry: T) => boolean): T[] {
		const lane = this.#byDeadline.get(deadline);
		if (!lane) {
			return [];
		}

		const removed = [...lane.started.extract(matches), ...lane.fresh.extract(matches)];
		if (lane.started.length === 0 && lane.fresh.length === 0) {
			this.#lanes.splice(this.#lanes.indexOf(lane), 1);
			this.#byDeadline.delete(deadline);
		}

		this.#size -= removed.length;
		return removed;
	}

	/** Where a lane of `deadline` goes: after every lane due no later (binary search; lanes are few, but need not be). */
	#laneIndex(deadline: number): number {
		let low = 0;
		let high = this.#lanes.length;
		while (low < high) {
			const middle = (low + high) >>> 1;
			if (this.#lanes[middle]!.deadline <= deadline) {
				low = middle + 1;
			} else {
				high = middle;
			}
		}

		return low;
	}
}

/** A first-in first-out array that skips taken entries with a head index (no O(n) shift per entry). */
class Fifo<T> {
	#items: T[] = [];
	#head = 0;

	get length(): number {
		return this.#items.length - this.#head;
	}

	push(item: T): void {
		this.#items.push(item);
	}

	/** Moves up to `count` entries, oldest first, onto the end of `into`. */
	shiftInto(into: T[], count: number): void {
		const end = Math.min(this.#items.length, this.#head + count);
		for (let index = this.#head; index < end; index++) {
			into.push(this.#items[index]!);
		}

		this.#head = end;
		if (this.#head === this.#items.length) {
			this.#items = [];
			this.#head = 0;
		} else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
			this.#items = this.#items.slice(this.#head);
			this.#head = 0;
		}
	}

	/** Removes and returns the entries `matches` selects; the rest keep their order. */
	extract(matches: (item: T) => boolean): T[] {
		const kept: T[] = [];
		const removed: T[] = [];
		for (let index = this.#head; index < this.#items.length; index++) {
			const item = this.#items[index]!;
			(matches(item) ? removed : kept).push(item);
		}

		this.#items = kept;
		this.#head = 0;
		return removed;
	}
}
