// The `$batch` dispatcher: every operation of every run in the process waits here for a request slot; up to `batchSize`
// of them leave together in one request, paced, under the concurrency the throughput control allows and only while
// the throttle gate is open. Each answer goes back to its operation; a 429 or an unreachable Graph shuts the gate for
// everyone (and, through the sync, for every instance).

import type {GraphFailure} from '../graph/graph-failure.js';
import type {CallResult, LinkGateway, LinkOperation} from '../graph/link-gateway.js';
import {childSignal} from './child-signal.js';
import type {Clock} from './clock.js';
import type {EngineEvents} from './engine-events.js';
import {PendingQueue} from './pending-queue.js';
import type {ThrottleGate} from './throttle-gate.js';
import type {ThrottleSync} from './throttle-sync.js';
import type {ThroughputControl} from './throughput-control.js';

/** Once paced, a request carries about this much of the pace (see `#operationsPerRequest`). */
const pacedRequestSeconds = 0.05;

/** The least time worth starting a request in; closer to the deadline, the pair is deferred instead. */
export const minimumRequestWindowMs = 1000;

export type Sent<T> = CallResult<T> | {kind: 'deferred'; delayMs: number; throttled?: GraphFailure};

/**
 * A defect in sod-sync itself (a request that threw instead of answering): never Graph's answer, so never a pair's dead
 * letter. It fails the invocation, and the host hands the message back whole, as for a 401.
 */
export class InternalError extends Error {
	override name = 'InternalError';

	constructor(cause: unknown) {
		super(`an internal error in sod-sync, not an answer from Graph: ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)}`, {cause});
	}
}

/** What Graph answers an operation that succeeds: 204 No Content to a `$ref` write, 200 to a read. */
function successStatus(operation: LinkOperation): string {
	return operation.kind === 'add' || operation.kind === 'remove' ? '204' : '200';
}

/** Failures that say "wait", not "this request failed": they shut the gate for everyone. */
function meansWait(result: CallResult<unknown>): result is {kind: 'failed'; failure: GraphFailure} {
	return result.kind === 'failed' && (result.failure.kind === 'throttled' || result.failure.kind === 'unreachable');
}

export interface RunContext {
	deadline: number;
	signal: AbortSignal;
}

/** What the dispatcher hands back for one operation. */
type Dispatched = CallResult<unknown> | {kind: 'gate-closed'; throttled?: GraphFailure} | {kind: 'deferred'} | {kind: 'internal-error'; error: InternalError};

interface PendingOperation {
	operation: LinkOperation;
	context: RunContext;
	resolve: (result: Dispatched) => void;
}

/** What a dispatcher counts, for `sod-sync run`'s report and the bench. */
export interface DispatchStats {
	/** HTTP requests sent to Graph. */
	requests: number;
	/** Operations carried by them. */
	operations: number;
	/** Operations answered 429. */
	throttled: number;
	/** Requests that found Graph unreachable (no connection could be made). */
	unreachable: number;
}

export interface BatchDispatcherOptions {
	gateway: LinkGateway;
	control: ThroughputControl;
	gate: ThrottleGate;
	clock: Clock;
	batchSize: number;
	requestTimeoutMs: number;
	sync: ThrottleSync | undefined;
	stats: DispatchStats;
	events: EngineEvents;
}

export class BatchDispatcher {
	readonly #gateway: LinkGateway;
	readonly #control: ThroughputControl;
	readonly #gate: ThrottleGate;
	readonly #clock: Clock;
	readonly #batchSize: number;
	readonly #requestTimeoutMs: number;
	readonly #sync: ThrottleSync | undefined;
	readonly stats: DispatchStats;
	readonly #events: EngineEvents;
	/** Operations waiting for a request: run by run, earliest deadline first, work already started first (pending-queue.ts). */
	readonly #pending = new PendingQueue<PendingOperation>();
	#active = 0;
	#drainScheduled = false;
	/** Waiting for the first exchange with the other instances before the first request. */
	#joining = false;

	constructor(options: BatchDispatcherOptions) {
		this.#gateway = options.gateway;
		this.#control = options.control;
		this.#gate = options.gate;
		this.#clock = options.clock;
		this.#batchSize = options.batchSize;
		this.#requestTimeoutMs = options.requestTimeoutMs;
		this.#sync = options.sync;
		this.stats = options.stats;
		this.#events = options.events;
	}

	/**
	 * Sends one operation once the gate is open, through the dispatcher. A 429 closes the gate and the operation waits
	 * for it again (holding no concurrency slot); past the deadline, or on shutdown, the pair is deferred instead.
	 *
	 * Operations leave run by run, earliest deadline first (pending-queue.ts says why); a `continuation` (a retry after a failure,
	 * a read that verifies a write, the next page of a list) goes ahead of its run's operations still waiting for their
	 * first request: it finishes work already started, and a message settles when its last pair does.
	 */
	async send(operation: LinkOperation, context: RunContext, continuation = false): Promise<Sent<unknown>> {
		let throttled: GraphFailure | undefined;
		for (;;) {
			const waitMs = Math.max(0, this.#gate.reopenAt - this.#clock.now());
			if (context.signal.aborted || this.#clock.now() + waitMs + minimumRequestWindowMs > context.deadline) {
				return {kind: 'deferred', delayMs: waitMs, throttled};
			}

			if (!this.#gate.isOpen()) {
				try {
					// eslint-disable-next-line no-await-in-loop
					await this.#gate.whenOpen(context.signal);
				} catch {
					return {kind: 'deferred', delayMs: 0, throttled};
				}
			}

			// eslint-disable-next-line no-await-in-loop
			const result = await new Promise<Dispatched>(resolve => {
				this.#pending.add({operation, context, resolve}, context, context.deadline, continuation);
				this.#scheduleDrain();
			});
			if (result.kind === 'gate-closed') {
				throttled = result.throttled ?? throttled;
				continue;
			}

			if (result.kind === 'deferred') {
				return {kind: 'deferred', delayMs: 0, throttled};
			}

			if (result.kind === 'internal-error') {
				throw result.error;
			}

			return result;
		}
	}

	/** Waits one turn of the event loop, so that the operations submitted together leave together. */
	#scheduleDrain(): void {
		if (!this.#drainScheduled) {
			this.#drainScheduled = true;
			setImmediate(() => {
				this.#drainScheduled = false;
				this.#drain();
			});
		}
	}

	/** Starts requests while slots are free: each takes up to `batchSize` pending operations. */
	#drain(): void {
		if (this.#sync && !this.#sync.joined) {
			if (!this.#joining) {
				this.#joining = true;
				void this.#sync.whenJoined().then(() => {
					this.#joining = false;
					this.#drain();
				});
			}

			return;
		}

		while (this.#pending.size > 0 && this.#active < this.#control.concurrency) {
			if (!this.#gate.isOpen()) {
				// Everyone goes back to waiting for the gate (and to checking their deadline) outside the dispatcher.
				for (const entry of this.#pending.take(Number.POSITIVE_INFINITY)) {
					entry.resolve({kind: 'gate-closed'});
				}

				return;
			}

			const group = this.#pending.take(this.#operationsPerRequest());
			this.#active++;
			this.#request(group)
				.catch((error: unknown) => {
					// The gateway turns every answer and transport error into a result: a throw is our own bug. It fails the
					// operations' runs (never the process, never a dead letter blaming Graph). Entries already resolved
					// ignore this.
					const internal = new InternalError(error);
					for (const entry of group) {
						entry.resolve({kind: 'internal-error', error: internal});
					}
				})
				.finally(() => {
					this.#active--;
					this.#drain();
				});
		}
	}

	/**
	 * Operations per request: `batchSize` while unpaced; once paced, about 50 ms of the pace (at least one). A `$batch` of
	 * 20 at a share of 60 operations/s would spend a third of a second's budget in one go, and every operation in a
	 * request that meets an empty bucket is refused: finer requests keep the pace smooth and a throttle event small.
	 */
	#operationsPerRequest(): number {
		const rate = this.#control.rate;
		return Number.isFinite(rate) ? Math.max(1, Math.min(this.#batchSize, Math.round(rate * pacedRequestSeconds))) : this.#batchSize;
	}

	/** Defers every waiting operation of `context` (its deadline came) and keeps the others in order. */
	purge(context: RunContext): void {
		for (const entry of this.#pending.remove(context)) {
			entry.resolve({kind: 'deferred'});
		}
	}

	async #request(group: PendingOperation[]): Promise<void> {
		// Late operations leave before they are paced: a deferred pair must not spend the budget or wait for a turn.
		const timely = dropLate(group, this.#clock.now());
		if (timely.length === 0) {
			return;
		}

		// The wait holds a request slot: it never outlasts the latest deadline among the operations, and ends when they
		// have all stopped (shutdown), whatever the pace says.
		const paceMs = Math.min(this.#control.reserve(timely.length), Math.max(...timely.map(entry => entry.context.deadline)) - this.#clock.now());
		if (paceMs > 0) {
			const allStopped = whenAllAborted(timely.map(entry => entry.context.signal));
			await this.#clock.sleep(paceMs, allStopped.signal).catch(() => undefined);
			allStopped.dispose();
		}

		const now = this.#clock.now();
		const live = dropLate(timely, now);
		if (live.length === 0) {
			return;
		}

		if (!this.#gate.isOpen()) {
			for (const entry of live) {
				entry.resolve({kind: 'gate-closed'});
			}

			return;
		}

		const timeoutMs = Math.min(this.#requestTimeoutMs, ...live.map(entry => entry.context.deadline - now));
		const timeout = childSignal(undefined, timeoutMs);
		const operations = live.map(entry => entry.operation);
		this.stats.requests++;
		this.stats.operations += operations.length;
		const results =
			operations.length === 1
				? [await this.#gateway.execute(operations[0]!, timeout.signal)]
				: await this.#gateway.executeBatch(operations, timeout.signal);
		timeout.dispose();
		// Accepted operations are counted before any 429 of the same answer, so that the rate estimate includes them.
		const accepted = results.filter(result => !meansWait(result)).length;
		if (accepted > 0) {
			this.#gate.recordSuccess();
			this.#control.recordAccepted(accepted);
		}

		if (this.#events.listens('request')) {
			const ok = results.filter(result => result.kind === 'ok').length;
			const throttledCount = results.filter(result => result.kind === 'failed' && result.failure.kind === 'throttled').length;
			const statuses: Record<string, number> = {};
			results.forEach((result, index) => {
				const status = result.kind === 'ok' ? successStatus(operations[index]!) : String(result.failure.status ?? 'none');
				statuses[status] = (statuses[status] ?? 0) + 1;
			});
			this.#events.emit({type: 'request', at: this.#clock.now(), operations: results.length, accepted: ok, throttled: throttledCount, failed: results.length - ok - throttledCount, statuses});
		}

		let unreachable = false;
		for (const [index, entry] of live.entries()) {
			const result = results[index]!;
			if (!meansWait(result)) {
				entry.resolve(result);
				continue;
			}

			if (result.failure.kind === 'unreachable') {
				// The request never left: Graph (or the way to it) is down. Everyone waits, backing off, and no pair is
				// charged for it; one gate close per request, however many operations it carried.
				unreachable = true;
			} else {
				this.stats.throttled++;
				if (this.#gate.close(result.failure.retryAfterMs, now)) {
					const reopenAt = this.#gate.reopenAt;
					const at = this.#clock.now();
					const before = this.#control.pace;
					const pace = this.#control.recordThrottle(Math.max(0, reopenAt - at));
					this.#events.emit({type: 'throttled', at, cause: 'throttled', retryAfterMs: result.failure.retryAfterMs, reopenAt});
					if (pace && pace !== before) {
						this.#events.emit({type: 'pace-changed', at, pace, source: 'this-instance'});
					}

					this.#sync?.publish({reopenAt, sentAt: now, closedAt: at, pace});
				}
			}

			entry.resolve({kind: 'gate-closed', throttled: result.failure});
		}

		if (unreachable) {
			this.stats.unreachable++;
			if (this.#gate.close(undefined, now)) {
				this.#events.emit({type: 'throttled', at: this.#clock.now(), cause: 'unreachable', retryAfterMs: undefined, reopenAt: this.#gate.reopenAt});
				this.#sync?.publish({reopenAt: this.#gate.reopenAt, sentAt: now, closedAt: this.#clock.now(), pace: undefined});
			}
		}
	}
}

/** A signal that aborts once every one of `signals` has. */
function whenAllAborted(signals: readonly AbortSignal[]): {signal: AbortSignal; dispose: () => void} {
	const controller = new AbortController();
	const check = () => {
		if (signals.every(signal => signal.aborted)) {
			controller.abort();
		}
	};

	for (const signal of signals) {
		signal.addEventListener('abort', check, {once: true});
	}

	check();
	return {
		signal: controller.signal,
		dispose() {
			for (const signal of signals) {
				signal.removeEventListener('abort', check);
			}
		},
	};
}

/** Resolves as deferred the operations whose run has no time left (or stopped); returns the others. */
function dropLate(group: PendingOperation[], now: number): PendingOperation[] {
	return group.filter(entry => {
		const late = entry.context.signal.aborted || entry.context.deadline - now < minimumRequestWindowMs;
		if (late) {
			entry.resolve({kind: 'deferred'});
		}

		return !late;
	});
}

