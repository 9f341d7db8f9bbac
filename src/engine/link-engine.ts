// The link engine: applies pairs to Graph under one process-wide concurrency bound and one throttle gate, retrying what
// is worth retrying and saying, for every pair, how it ended. Requests from every run in the process (every message the
// host is handling) share a dispatcher that packs up to 20 operations into one `$batch`, paces them, and adapts how many
// requests are in flight to what Graph accepts (see ThroughputControl).

import {setMaxListeners} from 'node:events';
import type {GraphFailure} from '../graph/graph-failure.js';
import {outcomeUnknown} from '../graph/graph-failure.js';
import {
	maximumBatchSize,
	readLinksPage,
	readPage,
	type CallResult,
	type LinkGateway,
	type LinkOperation,
	type PagedOperation,
} from '../graph/link-gateway.js';
import type {LinkAction, Pair} from '../pair.js';
import {defaults} from '../settings.js';
import {systemClock, type Clock} from './clock.js';
import {decideRetry, defaultRetryPolicy, freshHistory, type DeadLetterReason, type RetryPolicy} from './retry-decision.js';
import type {ThrottleStore} from './shared-throttle.js';
import {ThrottleGate} from './throttle-gate.js';
import {ThrottleSync} from './throttle-sync.js';
import {ThroughputControl} from './throughput-control.js';

export type PairOutcome =
	| {pair: Pair; status: 'linked' | 'already-linked' | 'removed' | 'already-absent'}
	| {pair: Pair; status: 'dead-letter'; reason: DeadLetterReason; failure: GraphFailure}
	/**
	 * Not finished in this invocation: to be re-queued, visible after `delayMs`. `failed` says whether the pair's own
	 * requests failed (5xx, timeouts, dropped connections, repeated 404s): only then does the deferral spend an attempt.
	 * A pair that only waited (gate shut, Graph unreachable, no time left, shutdown) did not fail.
	 */
	| {pair: Pair; status: 'deferred'; delayMs: number; failed: boolean; lastFailure: GraphFailure | undefined};

export type PairStatus = PairOutcome['status'];

/** A failure that is not any pair's fault (401, no token): the invocation must fail so the host retries the message. */
export class SystemicFailure extends Error {
	override name = 'SystemicFailure';
	readonly failure: GraphFailure;

	constructor(failure: GraphFailure) {
		super(`Graph refused the credential (${failure.status ?? failure.code}): ${failure.message}`);
		this.failure = failure;
	}
}

export interface LinkEngineOptions {
	gateway: LinkGateway;
	/** HTTP requests in flight at once, across every `run` of this engine. Defaults to `GRAPH_MAX_CONCURRENCY`'s default. */
	maxConcurrency?: number;
	/** Operations per `$batch` request, 1 to 20; 1 sends each operation on its own. Defaults to `GRAPH_BATCH_SIZE`'s. */
	batchSize?: number;
	/** Defaults to `GRAPH_REQUEST_TIMEOUT_SECONDS`'s default. */
	requestTimeoutMs?: number;
	gate?: ThrottleGate;
	retryPolicy?: RetryPolicy;
	clock?: Clock;
	random?: () => number;
	/** Shares the gate and the pace with the other instances on the same queue (see ThrottleSync). */
	throttleStore?: ThrottleStore;
	/** Where a warning goes (the shared state being unreachable). Defaults to `console.warn`. */
	onWarning?: (message: string) => void;
}

export interface RunOptions {
	/** Epoch ms by which every pair must be finished or deferred. */
	deadline: number;
	/** Aborts the run (host shutdown): unfinished pairs are deferred. */
	signal?: AbortSignal;
}

export interface EngineStats {
	/** HTTP requests sent to Graph. */
	requests: number;
	/** Operations carried by them. */
	operations: number;
	/** Operations answered 429. */
	throttled: number;
	/** Requests that found Graph unreachable (no connection could be made). */
	unreachable: number;
}

/** Once paced, a request carries about this much of the pace (see `#operationsPerRequest`). */
const pacedRequestSeconds = 0.05;

/** The least time worth starting a request in; closer to the deadline, the pair is deferred instead. */
const minimumRequestWindowMs = 1000;

type Sent<T> = CallResult<T> | {deferred: true; delayMs: number; throttled?: GraphFailure};

/** Failures that say "wait", not "this request failed": they shut the gate for everyone. */
function meansWait(result: CallResult<unknown>): result is {ok: false; failure: GraphFailure} {
	return !result.ok && (result.failure.kind === 'throttled' || result.failure.kind === 'unreachable');
}

interface RunContext {
	deadline: number;
	signal: AbortSignal;
}

/** What the dispatcher hands back for one operation. */
type Dispatched = CallResult<unknown> | {gateClosed: true; throttled?: GraphFailure} | {deferred: true};

interface PendingOperation {
	operation: LinkOperation;
	context: RunContext;
	resolve: (result: Dispatched) => void;
}

/**
 * @example
 * const engine = new LinkEngine({gateway, maxConcurrency: 8});
 * const outcomes = await engine.run(pairs, 'add', {deadline: Date.now() + 60_000});
 */
export class LinkEngine {
	readonly #gateway: LinkGateway;
	readonly #control: ThroughputControl;
	readonly #batchSize: number;
	readonly #gate: ThrottleGate;
	readonly #policy: RetryPolicy;
	readonly #clock: Clock;
	readonly #random: () => number;
	readonly #requestTimeoutMs: number;
	/** Operations waiting for a request, oldest first; `#pendingHead` skips those already taken (no O(n) shifts). */
	#pending: PendingOperation[] = [];
	#pendingHead = 0;
	#active = 0;
	#drainScheduled = false;
	/** Pairs (and page walks) this engine holds now, across every run: what admission weighs against the pace. */
	#held = 0;
	readonly #sync: ThrottleSync | undefined;
	readonly stats: EngineStats = {requests: 0, operations: 0, throttled: 0, unreachable: 0};

	constructor(options: LinkEngineOptions) {
		const maxConcurrency = options.maxConcurrency ?? defaults.graphMaxConcurrency;
		if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
			throw new TypeError(`Expected maxConcurrency to be a whole number from 1, got ${maxConcurrency}`);
		}

		const batchSize = options.batchSize ?? defaults.graphBatchSize;
		if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > maximumBatchSize) {
			throw new TypeError(`Expected batchSize to be a whole number from 1 to ${maximumBatchSize}, got ${batchSize}`);
		}

		this.#gateway = options.gateway;
		this.#batchSize = batchSize;
		this.#clock = options.clock ?? systemClock;
		this.#random = options.random ?? Math.random;
		this.#control = new ThroughputControl({maxConcurrency, clock: this.#clock});
		this.#gate = options.gate ?? new ThrottleGate({clock: this.#clock, random: this.#random});
		this.#policy = options.retryPolicy ?? defaultRetryPolicy;
		this.#requestTimeoutMs = options.requestTimeoutMs ?? defaults.graphRequestTimeoutSeconds * 1000;
		this.#sync = options.throttleStore
			? new ThrottleSync({
					store: options.throttleStore,
					gate: this.#gate,
					control: this.#control,
					clock: this.#clock,
					onWarning: options.onWarning ?? (message => console.warn(message)),
				})
			: undefined;
	}

	/** The link to the other instances, when the throttle state is shared. */
	get sync(): ThrottleSync | undefined {
		return this.#sync;
	}

	/** Pairs held now, across every run. */
	get held(): number {
		return this.#held;
	}

	/**
	 * How many of `count` more pairs this process can send before `deadline` at its current pace, after the pairs it
	 * already holds (every run counts). All of them while unpaced. The caller runs the admitted pairs at once (no await
	 * in between, so that two messages arriving together are weighed one after the other) and hands the rest back to
	 * the queue, for an instance or an invocation with room.
	 *
	 * @example
	 * const admitted = engine.admit(pairs.length, deadline);
	 * const outcomes = await engine.run(pairs.slice(0, admitted), 'add', {deadline});
	 */
	admit(count: number, deadline: number): number {
		const rate = this.#control.rate;
		if (!Number.isFinite(rate)) {
			return count;
		}

		const start = Math.max(this.#clock.now(), this.#gate.reopenAt);
		const window = Math.max(0, deadline - start - minimumRequestWindowMs) / 1000;
		return Math.max(0, Math.min(count, Math.floor(rate * window) - this.#held));
	}

	/** When pairs not admitted now could be served, about: once what this process holds has been sent at its pace. */
	admissionDelayMs(): number {
		const rate = this.#control.rate;
		if (!Number.isFinite(rate)) {
			return 0;
		}

		return Math.max(0, this.#gate.reopenAt - this.#clock.now()) + Math.ceil((this.#held / rate) * 1000);
	}

	get gate(): ThrottleGate {
		return this.#gate;
	}

	get control(): ThroughputControl {
		return this.#control;
	}

	/**
	 * Applies `action` to every pair and resolves with one outcome per pair, in order.
	 * Rejects with `SystemicFailure` (after every pair has stopped) when Graph refuses the credential.
	 */
	async run(pairs: readonly Pair[], action: LinkAction, options: RunOptions): Promise<PairOutcome[]> {
		this.#hold(pairs.length);
		const run = childSignal(options.signal);
		// Every waiting pair listens for the abort: that many listeners is the design, not a leak.
		setMaxListeners(pairs.length + 10, run.signal);
		const context: RunContext = {deadline: options.deadline, signal: run.signal};
		// At the deadline, what still waits for a request slot is deferred at once, not when its turn comes.
		const purge = setTimeout(() => {
			this.#purge(context);
		}, Math.max(0, options.deadline - minimumRequestWindowMs - this.#clock.now()));
		purge.unref();
		run.signal.addEventListener('abort', () => this.#purge(context), {once: true});
		const settled = await Promise.allSettled(
			pairs.map(async pair => {
				try {
					return await this.#apply(pair, action, context);
				} catch (error) {
					run.abort();
					throw error;
				} finally {
					this.#hold(-1);
				}
			}),
		);
		clearTimeout(purge);
		run.dispose();
		const systemic = settled.find(result => result.status === 'rejected');
		if (systemic) {
			throw (systemic as PromiseRejectedResult).reason;
		}

		return settled.map(result => (result as PromiseFulfilledResult<PairOutcome>).value);
	}

	/**
	 * Reads every page of a collection (a package's links, the tenant's packages, a rule's violators) under the same
	 * concurrency bound, gate and retries as the writes. Rejects with `SystemicFailure` on a 401.
	 *
	 * @example
	 * const links = await engine.readAll({kind: 'list', accessPackageId, nextLink: undefined}, {deadline});
	 */
	async readAll(operation: PagedOperation, options: RunOptions): Promise<CallResult<unknown[]>> {
		this.#hold(1);
		try {
			return await this.#readAll(operation, options);
		} finally {
			this.#hold(-1);
		}
	}

	#hold(change: number): void {
		this.#held += change;
		this.#sync?.setBusy(this.#held > 0);
	}

	async #readAll(operation: PagedOperation, options: RunOptions): Promise<CallResult<unknown[]>> {
		const context: RunContext = {deadline: options.deadline, signal: options.signal ?? new AbortController().signal};
		const items: unknown[] = [];
		let history = freshHistory;
		let nextLink: string | undefined;
		for (;;) {
			// eslint-disable-next-line no-await-in-loop
			const page = await this.#send({...operation, nextLink}, context);
			if ('deferred' in page) {
				return {ok: false, failure: page.throttled ?? {kind: 'timeout', code: 'TimeBudget', message: 'not read within the time budget'}};
			}

			if (page.ok) {
				const read = readPage(page.value);
				items.push(...read.items);
				if (read.nextLink === undefined) {
					return {ok: true, value: items};
				}

				nextLink = read.nextLink;
				continue;
			}

			const decision = decideRetry('list', page.failure, history, this.#policy, this.#random);
			if (decision.type === 'systemic') {
				throw new SystemicFailure(page.failure);
			}

			if (decision.type !== 'retry' || this.#clock.now() + decision.delayMs + minimumRequestWindowMs > context.deadline) {
				return {ok: false, failure: page.failure};
			}

			history = decision.history;
			// eslint-disable-next-line no-await-in-loop
			await this.#clock.sleep(decision.delayMs, context.signal).catch(() => undefined);
		}
	}

	async #apply(pair: Pair, action: LinkAction, context: RunContext): Promise<PairOutcome> {
		let history = freshHistory;
		let lastFailure: GraphFailure | undefined;
		// `verify` reads the link list; `addFailure` is the 400/409 that sent us there (undefined after an unknown outcome).
		let step: 'write' | 'verify' = 'write';
		let addFailure: GraphFailure | undefined;
		const deferred = (delayMs: number, failed: boolean, throttled?: GraphFailure): PairOutcome => ({
			pair,
			status: 'deferred',
			delayMs,
			failed,
			lastFailure: throttled ?? lastFailure,
		});

		for (;;) {
			let failure: GraphFailure;
			if (step === 'verify') {
				// eslint-disable-next-line no-await-in-loop
				const listed = await this.#isLinked(pair, context);
				if ('deferred' in listed) {
					return deferred(listed.delayMs, false, listed.throttled);
				}

				if (listed.ok) {
					if (listed.value) {
						return {pair, status: 'already-linked'};
					}

					if (addFailure) {
						return {pair, status: 'dead-letter', reason: addFailure.kind as DeadLetterReason, failure: addFailure};
					}

					step = 'write';
					continue;
				}

				failure = listed.failure;
			} else {
				// eslint-disable-next-line no-await-in-loop
				const written = await this.#send({kind: action, pair}, context);
				if ('deferred' in written) {
					return deferred(written.delayMs, false, written.throttled);
				}

				if (written.ok) {
					return {pair, status: action === 'add' ? 'linked' : 'removed'};
				}

				failure = written.failure;
			}

			lastFailure = failure;
			const decision = decideRetry(step === 'verify' ? 'list' : action, failure, history, this.#policy, this.#random);
			switch (decision.type) {
				case 'systemic': {
					throw new SystemicFailure(failure);
				}

				case 'already-done': {
					return {pair, status: 'already-absent'};
				}

				case 'verify': {
					step = 'verify';
					addFailure = failure;
					break;
				}

				case 'requeue': {
					// Out of retries for this invocation: the pair's own requests failed (unless the process is stopping).
					return deferred(0, failure.kind !== 'aborted');
				}

				case 'dead-letter': {
					return {pair, status: 'dead-letter', reason: decision.reason, failure};
				}

				case 'retry': {
					history = decision.history;
					if (this.#clock.now() + decision.delayMs + minimumRequestWindowMs > context.deadline) {
						return deferred(decision.delayMs, true);
					}

					try {
						// eslint-disable-next-line no-await-in-loop
						await this.#clock.sleep(decision.delayMs, context.signal);
					} catch {
						return deferred(0, false);
					}

					if (step === 'write' && action === 'add' && outcomeUnknown(failure)) {
						// The add may have landed before the connection broke: look before writing again.
						step = 'verify';
						addFailure = undefined;
					}

					break;
				}
			}
		}
	}

	/** Reads `pair.accessPackageId`'s links, page by page, until `pair.incompatibleAccessPackageId` turns up or the pages end. */
	async #isLinked(pair: Pair, context: RunContext): Promise<Sent<boolean>> {
		let nextLink: string | undefined;
		do {
			// eslint-disable-next-line no-await-in-loop
			const page = await this.#send({kind: 'list', accessPackageId: pair.accessPackageId, nextLink}, context);
			if ('deferred' in page || !page.ok) {
				return page;
			}

			const {ids, nextLink: next} = readLinksPage(page.value);
			if (ids.includes(pair.incompatibleAccessPackageId)) {
				return {ok: true, value: true};
			}

			nextLink = next;
		} while (nextLink !== undefined);

		return {ok: true, value: false};
	}

	/**
	 * Sends one operation once the gate is open, through the dispatcher. A 429 closes the gate and the operation waits
	 * for it again (holding no concurrency slot); past the deadline, or on shutdown, the pair is deferred instead.
	 */
	async #send(operation: LinkOperation, context: RunContext): Promise<Sent<unknown>> {
		let throttled: GraphFailure | undefined;
		for (;;) {
			const waitMs = Math.max(0, this.#gate.reopenAt - this.#clock.now());
			if (context.signal.aborted || this.#clock.now() + waitMs + minimumRequestWindowMs > context.deadline) {
				return {deferred: true, delayMs: waitMs, throttled};
			}

			if (!this.#gate.isOpen()) {
				try {
					// eslint-disable-next-line no-await-in-loop
					await this.#gate.whenOpen(context.signal);
				} catch {
					return {deferred: true, delayMs: 0, throttled};
				}
			}

			// eslint-disable-next-line no-await-in-loop
			const result = await new Promise<Dispatched>(resolve => {
				this.#pending.push({operation, context, resolve});
				this.#scheduleDrain();
			});
			if ('gateClosed' in result) {
				throttled = result.throttled ?? throttled;
				continue;
			}

			if ('deferred' in result) {
				return {deferred: true, delayMs: 0, throttled};
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
		while (this.#pendingHead < this.#pending.length && this.#active < this.#control.concurrency) {
			if (!this.#gate.isOpen()) {
				// Everyone goes back to waiting for the gate (and to checking their deadline) outside the dispatcher.
				for (const entry of this.#take(Number.POSITIVE_INFINITY)) {
					entry.resolve({gateClosed: true});
				}

				return;
			}

			const group = this.#take(this.#operationsPerRequest());
			this.#active++;
			this.#request(group)
				.catch((error: unknown) => {
					// A request that could not even be made is a failure of its operations, never a crash of the process.
					const failure: GraphFailure = {kind: 'bad-request', code: 'RequestFailed', message: `the request failed before an answer: ${(error as Error)?.message ?? String(error)}`};
					for (const entry of group) {
						entry.resolve({ok: false, failure});
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
	#purge(context: RunContext): void {
		const kept: PendingOperation[] = [];
		for (let index = this.#pendingHead; index < this.#pending.length; index++) {
			const entry = this.#pending[index]!;
			if (entry.context === context) {
				entry.resolve({deferred: true});
			} else {
				kept.push(entry);
			}
		}

		this.#pending = kept;
		this.#pendingHead = 0;
	}

	/** The oldest `count` pending operations, removed. */
	#take(count: number): PendingOperation[] {
		const end = Math.min(this.#pending.length, this.#pendingHead + count);
		const taken = this.#pending.slice(this.#pendingHead, end);
		this.#pendingHead = end;
		if (this.#pendingHead === this.#pending.length) {
			this.#pending = [];
			this.#pendingHead = 0;
		} else if (this.#pendingHead > 1024 && this.#pendingHead * 2 > this.#pending.length) {
			this.#pending = this.#pending.slice(this.#pendingHead);
			this.#pendingHead = 0;
		}

		return taken;
	}

	async #request(group: PendingOperation[]): Promise<void> {
		// Late operations leave before they are paced: a deferred pair must not spend the budget or wait for a turn.
		const timely = dropLate(group, this.#clock.now());
		if (timely.length === 0) {
			return;
		}

		const paceMs = this.#control.reserve(timely.length);
		if (paceMs > 0) {
			await this.#clock.sleep(paceMs);
		}

		const now = this.#clock.now();
		const live = dropLate(timely, now);
		if (live.length === 0) {
			return;
		}

		if (!this.#gate.isOpen()) {
			for (const entry of live) {
				entry.resolve({gateClosed: true});
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
					const pace = this.#control.recordThrottle(Math.max(0, reopenAt - this.#clock.now()));
					this.#sync?.publish({reopenAt, sentAt: now, closedAt: this.#clock.now(), pace});
				}
			}

			entry.resolve({gateClosed: true, throttled: result.failure});
		}

		if (unreachable) {
			this.stats.unreachable++;
			if (this.#gate.close(undefined, now)) {
				this.#sync?.publish({reopenAt: this.#gate.reopenAt, sentAt: now, closedAt: this.#clock.now(), pace: undefined});
			}
		}
	}
}

/** Resolves as deferred the operations whose run has no time left (or stopped); returns the others. */
function dropLate(group: PendingOperation[], now: number): PendingOperation[] {
	return group.filter(entry => {
		const late = entry.context.signal.aborted || entry.context.deadline - now < minimumRequestWindowMs;
		if (late) {
			entry.resolve({deferred: true});
		}

		return !late;
	});
}

/**
 * An abort signal that follows `parent` (and fires a `TimeoutError` after `timeoutMs`, if given), with a `dispose` that
 * unhooks it from the parent. Used instead of `AbortSignal.any` so that a long-lived parent (the host's shutdown signal)
 * does not collect a listener per request.
 */
function childSignal(parent: AbortSignal | undefined, timeoutMs?: number): {signal: AbortSignal; abort(): void; dispose(): void} {
	const controller = new AbortController();
	const abort = () => {
		controller.abort(new DOMException('The operation was aborted.', 'AbortError'));
	};

	const timer =
		timeoutMs === undefined
			? undefined
			: setTimeout(() => {
					controller.abort(new DOMException('The operation timed out.', 'TimeoutError'));
				}, timeoutMs);
	if (parent?.aborted) {
		abort();
	} else {
		parent?.addEventListener('abort', abort, {once: true});
	}

	return {
		signal: controller.signal,
		abort,
		dispose() {
			clearTimeout(timer);
			parent?.removeEventListener('abort', abort);
		},
	};
}
