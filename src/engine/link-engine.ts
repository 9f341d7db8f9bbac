// The link engine: takes each pair through its states (write, verify by reading the list, retry, defer, dead-letter)
// and walks paged collections, saying for every pair how it ended; admits work by pace. Every request goes through one
// process-wide BatchDispatcher (one concurrency bound, one throttle gate, `$batch` packing, pacing), shared with the
// other instances through ThrottleSync when a ThrottleStore is given.

import {setMaxListeners} from 'node:events';
import type {GraphFailure} from '../graph/graph-failure.js';
import {outcomeUnknown} from '../graph/graph-failure.js';
import {PageWalk} from '../graph/page-walk.js';
import {
	linkListOperation,
	maximumBatchSize,
	readLinksPage,
	readPage,
	type CallResult,
	type LinkGateway,
	type PagedOperation,
} from '../graph/link-gateway.js';
import {pairKind, pairTarget, type LinkAction, type Pair} from '../pair/pair.js';
import {defaults} from '../config/settings.js';
import {systemClock, type Clock} from './clock.js';
import {decideRetry, defaultRetryPolicy, freshHistory, type DeadLetterReason, type RetryPolicy} from './retry-decision.js';
import {BatchDispatcher, minimumRequestWindowMs, type DispatchStats, type RunContext, type Sent} from './batch-dispatcher.js';
import {childSignal} from './child-signal.js';
import {EngineEvents} from './engine-events.js';
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
	/**
	 * Awaited before a pair's first request (the import ledger's pre-image of its package: what was linked before the
	 * import must be known before the import writes). A rejection fails the run like a request's systemic failure.
	 */
	before?: (pair: Pair) => Promise<void>;
}

export interface ReadOptions extends RunOptions {
	/**
	 * Each page's items as they arrive, instead of all of them at the end: `readAll` then resolves with an empty list,
	 * and memory holds one page (a group of tens of thousands of members, walked for a join).
	 */
	onPage?: (items: unknown[]) => void;
}

/** What the engine counts: its dispatcher's requests, operations, 429s and unreachable requests. */
export type EngineStats = DispatchStats;

/**
 * @example
 * const engine = new LinkEngine({gateway, maxConcurrency: 8});
 * const outcomes = await engine.run(pairs, 'add', {deadline: Date.now() + 60_000});
 */
/**
 * Where a pair's application stands:
 * - `write`: send the add or remove;
 * - `verify-refused`: Graph refused the add (400/409), perhaps because the link exists: read the list; absent, the pair
 *   is dead-lettered for the refusal;
 * - `verify-unknown`: the add's answer never came (a dropped connection, a timeout): read the list; absent, write again.
 */
type ApplyStep =
	| {name: 'write'}
	| {name: 'verify-refused'; reason: 'bad-request' | 'conflict'; failure: GraphFailure}
	| {name: 'verify-unknown'};

export class LinkEngine {
	readonly #control: ThroughputControl;
	readonly #gate: ThrottleGate;
	readonly #policy: RetryPolicy;
	readonly #clock: Clock;
	readonly #random: () => number;
	readonly #dispatcher: BatchDispatcher;
	/** Pairs (and page walks) this engine holds now, across every run: what admission weighs against the pace. */
	#held = 0;
	readonly #sync: ThrottleSync | undefined;
	readonly stats: EngineStats = {requests: 0, operations: 0, throttled: 0, unreachable: 0};
	/** What happened, for logging, metrics and reports to subscribe to (see `EngineEvent`). */
	readonly events = new EngineEvents();

	constructor(options: LinkEngineOptions) {
		const maxConcurrency = options.maxConcurrency ?? defaults.graphMaxConcurrency;
		if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
			throw new TypeError(`Expected maxConcurrency to be a whole number from 1, got ${maxConcurrency}`);
		}

		const batchSize = options.batchSize ?? defaults.graphBatchSize;
		if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > maximumBatchSize) {
			throw new TypeError(`Expected batchSize to be a whole number from 1 to ${maximumBatchSize}, got ${batchSize}`);
		}

		this.#clock = options.clock ?? systemClock;
		this.#random = options.random ?? Math.random;
		this.#control = new ThroughputControl({maxConcurrency, clock: this.#clock});
		this.#gate = options.gate ?? new ThrottleGate({clock: this.#clock, random: this.#random});
		this.#policy = options.retryPolicy ?? defaultRetryPolicy;
		this.#sync = options.throttleStore
			? new ThrottleSync({
					store: options.throttleStore,
					gate: this.#gate,
					control: this.#control,
					clock: this.#clock,
					onWarning: options.onWarning ?? (message => console.warn(message)),
					events: this.events,
				})
			: undefined;
		this.#dispatcher = new BatchDispatcher({
			gateway: options.gateway,
			control: this.#control,
			gate: this.#gate,
			clock: this.#clock,
			batchSize,
			requestTimeoutMs: options.requestTimeoutMs ?? defaults.graphRequestTimeoutSeconds * 1000,
			sync: this.#sync,
			stats: this.stats,
			events: this.events,
		});
	}

	/** The link to the other instances, when the throttle state is shared. */
	get sync(): ThrottleSync | undefined {
		return this.#sync;
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

	/**
	 * When pairs not admitted now could be served, about: once what this process holds has been sent at its pace, and no
	 * later than `deadline` (the deadline of the run that could not take them): by then every run it holds has ended,
	 * and what it could not send is back on the queue too. Without that bound, work admitted before the pace was known
	 * (or when this process's share was larger) would hide pairs for minutes at the end of an import.
	 */
	admissionDelayMs(deadline: number): number {
		const rate = this.#control.rate;
		if (!Number.isFinite(rate)) {
			return 0;
		}

		const now = this.#clock.now();
		const served = Math.max(0, this.#gate.reopenAt - now) + Math.ceil((this.#held / rate) * 1000);
		return Math.min(served, Math.max(0, deadline - now));
	}

	get gate(): ThrottleGate {
		return this.#gate;
	}

	get control(): ThroughputControl {
		return this.#control;
	}

	/**
	 * Graph's early warning on an answer (`x-ms-throttle-limit-percentage`: `used` of the app's limit spent): eases this
	 * instance's pace before a 429 (see pace.ts). The gateway and the HTTP client call it as answers arrive.
	 */
	recordLimitWarning(used: number): void {
		const eased = this.#control.recordLimitWarning(used);
		if (eased) {
			const at = this.#clock.now();
			this.events.emit({type: 'limit-warning', at, used, eased: eased.eased});
			if (eased.eased === 'pace') {
				this.events.emit({type: 'pace-changed', at, pace: eased.pace, source: 'limit-warning'});
			}
		}
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
			this.#dispatcher.purge(context);
		}, Math.max(0, options.deadline - minimumRequestWindowMs - this.#clock.now()));
		purge.unref();
		run.signal.addEventListener('abort', () => this.#dispatcher.purge(context), {once: true});
		const settled = await Promise.allSettled(
			pairs.map(async pair => {
				try {
					await options.before?.(pair);
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
	async readAll(operation: PagedOperation, options: ReadOptions): Promise<CallResult<unknown[]>> {
		this.#hold(1);
		try {
			return await this.#readAll(operation, options);
		} finally {
			this.#hold(-1);
		}
	}

	#hold(change: number): void {
		this.#held += change;
		this.#control.setBusy(this.#held > 0);
		this.#sync?.setBusy(this.#held > 0);
	}

	async #readAll(operation: PagedOperation, options: ReadOptions): Promise<CallResult<unknown[]>> {
		const context: RunContext = {deadline: options.deadline, signal: options.signal ?? new AbortController().signal};
		const items: unknown[] = [];
		const walk = new PageWalk();
		let history = freshHistory;
		let nextLink: string | undefined;
		for (;;) {
			// eslint-disable-next-line no-await-in-loop
			const page = await this.#dispatcher.send({...operation, nextLink}, context, nextLink !== undefined || history !== freshHistory);
			if (page.kind === 'deferred') {
				return {kind: 'failed', failure: page.throttled ?? {kind: 'timeout', code: 'TimeBudget', message: 'not read within the time budget'}};
			}

			if (page.kind === 'ok') {
				const read = readPage(page.value);
				if (options.onPage) {
					options.onPage(read.items);
				} else {
					items.push(...read.items);
				}

				if (read.nextLink === undefined) {
					return {kind: 'ok', value: items};
				}

				const stop = walk.follow(read.nextLink);
				if (stop) {
					return {kind: 'failed', failure: stop};
				}

				nextLink = read.nextLink;
				continue;
			}

			const decision = decideRetry('list', page.failure, history, this.#policy, this.#random);
			if (decision.kind === 'systemic') {
				throw new SystemicFailure(page.failure);
			}

			if (decision.kind !== 'retry' || this.#clock.now() + decision.delayMs + minimumRequestWindowMs > context.deadline) {
				return {kind: 'failed', failure: page.failure};
			}

			history = decision.history;
			// eslint-disable-next-line no-await-in-loop
			await this.#clock.sleep(decision.delayMs, context.signal).catch(() => undefined);
		}
	}

	async #apply(pair: Pair, action: LinkAction, context: RunContext): Promise<PairOutcome> {
		let history = freshHistory;
		let lastFailure: GraphFailure | undefined;
		let step: ApplyStep = {name: 'write'};
		const deferred = (delayMs: number, failed: boolean, throttled?: GraphFailure): PairOutcome => ({
			pair,
			status: 'deferred',
			delayMs,
			failed,
			lastFailure: throttled ?? lastFailure,
		});

		for (;;) {
			let failure: GraphFailure;
			if (step.name === 'write') {
				// eslint-disable-next-line no-await-in-loop
				const written = await this.#dispatcher.send({kind: action, pair}, context, lastFailure !== undefined);
				if (written.kind === 'deferred') {
					return deferred(written.delayMs, false, written.throttled);
				}

				if (written.kind === 'ok') {
					return {pair, status: action === 'add' ? 'linked' : 'removed'};
				}

				failure = written.failure;
			} else {
				// eslint-disable-next-line no-await-in-loop
				const listed = await this.#isLinked(pair, context);
				if (listed.kind === 'deferred') {
					return deferred(listed.delayMs, false, listed.throttled);
				}

				if (listed.kind === 'ok') {
					if (listed.value) {
						return {pair, status: 'already-linked'};
					}

					if (step.name === 'verify-refused') {
						return {pair, status: 'dead-letter', reason: step.reason, failure: step.failure};
					}

					step = {name: 'write'};
					continue;
				}

				failure = listed.failure;
			}

			lastFailure = failure;
			const decision = decideRetry(step.name === 'write' ? action : 'list', failure, history, this.#policy, this.#random);
			switch (decision.kind) {
				case 'systemic': {
					throw new SystemicFailure(failure);
				}

				case 'already-done': {
					return {pair, status: 'already-absent'};
				}

				case 'verify': {
					step = {name: 'verify-refused', reason: decision.reason, failure};
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

					if (step.name === 'write' && action === 'add' && outcomeUnknown(failure)) {
						// The add may have landed before the connection broke: look before writing again.
						step = {name: 'verify-unknown'};
					}

					break;
				}
			}
		}
	}

	async #isLinked(pair: Pair, context: RunContext): Promise<Sent<boolean>> {
		const walk = new PageWalk();
		let nextLink: string | undefined;
		do {
			// A verification: work already started, ahead of first writes (see BatchDispatcher.send).
			// eslint-disable-next-line no-await-in-loop
			const page = await this.#dispatcher.send({...linkListOperation(pair.accessPackageId, pairKind(pair)), nextLink}, context, true);
			if (page.kind !== 'ok') {
				return page;
			}

			const {ids, nextLink: next} = readLinksPage(page.value);
			if (ids.includes(pairTarget(pair))) {
				return {kind: 'ok', value: true};
			}

			const stop = next === undefined ? undefined : walk.follow(next);
			if (stop) {
				return {kind: 'failed', failure: stop};
			}

			nextLink = next;
		} while (nextLink !== undefined);

		return {kind: 'ok', value: false};
	}

}

