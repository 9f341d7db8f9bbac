// The order in which operations waiting for a request leave: run by run, earliest deadline first (runs due at the
// same moment in the order they first sent something), and within one run work already started first, then the rest
// in the order it came. A run is whatever the caller passes as one: an invocation's writes, or one collection read.
//
// Why run by run rather than first come: the host hands a worker a batch of messages at once and fetches the next
// batch only once few are left running (host.json's newBatchThreshold). Served first come, the operations of a batch
// interleave, every message of it finishes at about the same moment, and the host polls for the next batch into an
// idle gap (`npm run bench`'s faulty and latency-bound scenarios showed it as a quarter-second hole in Graph's
// answers). Served run by run, messages settle one after another in the order they started, the next batch arrives
// while the last ones still run, and a run close to its deadline is never kept waiting by a younger one. Messages of
// one batch start within the same millisecond, so their deadlines tie: the order of first sending breaks the tie (by
// deadline alone they interleaved again). Admission (`LinkEngine.admit`) already assumes this order: what a run may
// take is what its pace can send after everything held before it.

interface Lane<T> {
	readonly run: object;
	readonly deadline: number;
	/** When the run first sent something: the tie-break between runs due at the same moment. Never changes. */
	readonly arrival: number;
	/** Work already started: a retry, a read that verifies a write, a list's next page. */
	readonly started: Fifo<T>;
	readonly fresh: Fifo<T>;
}

/**
 * @example
 * const queue = new PendingQueue<string>();
 * const [late, soon] = [{}, {}];
 * queue.add('late', late, 2000);
 * queue.add('soon', soon, 1000);
 * queue.add('retry', late, 2000, true);
 * queue.take(3); // ['soon', 'retry', 'late']
 */
export class PendingQueue<T> {
	/** Lanes in the order they leave; none empty. */
	#lanes: Array<Lane<T>> = [];
	readonly #byRun = new Map<object, Lane<T>>();
	/** Each run's arrival, kept after its lane empties, so that a run that sends again keeps its place. */
	readonly #arrivals = new WeakMap<object, number>();
	#nextArrival = 0;
	#size = 0;

	get size(): number {
		return this.#size;
	}

	/** Queues `entry` of `run` (due at `deadline`): at the back of the run's started work when `started`, else of its new work. */
	add(entry: T, run: object, deadline: number, started = false): void {
		let lane = this.#byRun.get(run);
		if (!lane) {
			let arrival = this.#arrivals.get(run);
			if (arrival === undefined) {
				arrival = this.#nextArrival++;
				this.#arrivals.set(run, arrival);
			}

			lane = {run, deadline, arrival, started: new Fifo(), fresh: new Fifo()};
			this.#byRun.set(run, lane);
			this.#lanes.splice(this.#laneIndex(lane), 0, lane);
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
				this.#byRun.delete(lane.run);
			}
		}

		this.#size -= taken.length;
		return taken;
	}

	/** Removes and returns every entry of `run`, in the order they would have left. */
	remove(run: object): T[] {
		const lane = this.#byRun.get(run);
		if (!lane) {
			return [];
		}

		const removed: T[] = [];
		lane.started.shiftInto(removed, Number.POSITIVE_INFINITY);
		lane.fresh.shiftInto(removed, Number.POSITIVE_INFINITY);
		this.#lanes.splice(this.#lanes.indexOf(lane), 1);
		this.#byRun.delete(run);
		this.#size -= removed.length;
		return removed;
	}

	/** Where `lane` goes: after every lane that leaves before it (binary search; lanes are few, but need not be). */
	#laneIndex(lane: Lane<T>): number {
		let low = 0;
		let high = this.#lanes.length;
		while (low < high) {
			const middle = (low + high) >>> 1;
			const other = this.#lanes[middle]!;
			if (other.deadline < lane.deadline || (other.deadline === lane.deadline && other.arrival < lane.arrival)) {
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
}
