// The link engine: applies pairs to Graph under one process-wide concurrency bound and one throttle gate,
// retrying what is worth retrying and saying, for every pair, how it ended.

import {setMaxListeners} from 'node:events';
import pLimit, {type LimitFunction} from 'p-limit';
import type {GraphFailure} from '../graph/graph-failure.js';
import {outcomeUnknown} from '../graph/graph-failure.js';
import type {CallResult, LinkGateway} from '../graph/link-gateway.js';
import type {LinkAction, Pair} from '../pair.js';
import {systemClock, type Clock} from './clock.js';
import {decideRetry, defaultRetryPolicy, freshHistory, type DeadLetterReason, type RetryPolicy} from './retry-decision.js';
import {ThrottleGate} from './throttle-gate.js';

export type PairOutcome =
	| {pair: Pair; status: 'linked' | 'already-linked' | 'removed' | 'already-absent'}
	| {pair: Pair; status: 'dead-letter'; reason: DeadLetterReason; failure: GraphFailure}
	/** Not finished in this invocation: to be re-queued, visible after `delayMs`. */
	| {pair: Pair; status: 'deferred'; delayMs: number; lastFailure: GraphFailure | undefined};

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
	/** Requests in flight at once, across every `run` of this engine. Defaults to 8. */
	maxConcurrency?: number;
	/** Defaults to 30 s. */
	requestTimeoutMs?: number;
	gate?: ThrottleGate;
	retryPolicy?: RetryPolicy;
	clock?: Clock;
	random?: () => number;
}

export interface RunOptions {
	/** Epoch ms by which every pair must be finished or deferred. */
	deadline: number;
	/** Aborts the run (host shutdown): unfinished pairs are deferred. */
	signal?: AbortSignal;
}

/** The least time worth starting a request in; closer to the deadline, the pair is deferred instead. */
const minimumRequestWindowMs = 1000;

type Sent<T> = CallResult<T> | {deferred: true; delayMs: number; throttled?: GraphFailure};

interface RunContext {
	deadline: number;
	signal: AbortSignal;
}

/**
 * @example
 * const engine = new LinkEngine({gateway, maxConcurrency: 8});
 * const outcomes = await engine.run(pairs, 'add', {deadline: Date.now() + 60_000});
 */
export class LinkEngine {
	readonly #gateway: LinkGateway;
	readonly #limit: LimitFunction;
	readonly #gate: ThrottleGate;
	readonly #policy: RetryPolicy;
	readonly #clock: Clock;
	readonly #random: () => number;
	readonly #requestTimeoutMs: number;

	constructor(options: LinkEngineOptions) {
		const maxConcurrency = options.maxConcurrency ?? 8;
		if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
			throw new TypeError(`Expected maxConcurrency to be a whole number from 1, got ${maxConcurrency}`);
		}

		this.#gateway = options.gateway;
		this.#limit = pLimit(maxConcurrency);
		this.#clock = options.clock ?? systemClock;
		this.#random = options.random ?? Math.random;
		this.#gate = options.gate ?? new ThrottleGate({clock: this.#clock, random: this.#random});
		this.#policy = options.retryPolicy ?? defaultRetryPolicy;
		this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
	}

	get gate(): ThrottleGate {
		return this.#gate;
	}

	/** Requests in flight now, across every run. */
	get activeRequests(): number {
		return this.#limit.activeCount;
	}

	/**
	 * Applies `action` to every pair and resolves with one outcome per pair, in order.
	 * Rejects with `SystemicFailure` (after every pair has stopped) when Graph refuses the credential.
	 */
	async run(pairs: readonly Pair[], action: LinkAction, options: RunOptions): Promise<PairOutcome[]> {
		const run = childSignal(options.signal);
		// Every waiting pair listens for the abort: that many listeners is the design, not a leak.
		setMaxListeners(pairs.length + 10, run.signal);
		const context: RunContext = {deadline: options.deadline, signal: run.signal};
		const settled = await Promise.allSettled(
			pairs.map(async pair => {
				try {
					return await this.#apply(pair, action, context);
				} catch (error) {
					run.abort();
					throw error;
				}
			}),
		);
		run.dispose();
		const systemic = settled.find(result => result.status === 'rejected');
		if (systemic) {
			throw (systemic as PromiseRejectedResult).reason;
		}

		return settled.map(result => (result as PromiseFulfilledResult<PairOutcome>).value);
	}

	async #apply(pair: Pair, action: LinkAction, context: RunContext): Promise<PairOutcome> {
		let history = freshHistory;
		let lastFailure: GraphFailure | undefined;
		// `verify` reads the link list; `addFailure` is the 400/409 that sent us there (undefined after an unknown outcome).
		let step: 'write' | 'verify' = 'write';
		let addFailure: GraphFailure | undefined;
		const deferred = (delayMs: number, throttled?: GraphFailure): PairOutcome => ({
			pair,
			status: 'deferred',
			delayMs,
			lastFailure: throttled ?? lastFailure,
		});

		for (;;) {
			let failure: GraphFailure;
			if (step === 'verify') {
				// eslint-disable-next-line no-await-in-loop
				const listed = await this.#isLinked(pair, context);
				if ('deferred' in listed) {
					return deferred(listed.delayMs, listed.throttled);
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
				const written = await this.#send(
					signal => (action === 'add' ? this.#gateway.addLink(pair, signal) : this.#gateway.removeLink(pair, signal)),
					context,
				);
				if ('deferred' in written) {
					return deferred(written.delayMs, written.throttled);
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
					return deferred(0);
				}

				case 'dead-letter': {
					return {pair, status: 'dead-letter', reason: decision.reason, failure};
				}

				case 'retry': {
					history = decision.history;
					if (this.#clock.now() + decision.delayMs + minimumRequestWindowMs > context.deadline) {
						return deferred(decision.delayMs);
					}

					try {
						// eslint-disable-next-line no-await-in-loop
						await this.#clock.sleep(decision.delayMs, context.signal);
					} catch {
						return deferred(0);
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
			const page = await this.#send(
				signal => this.#gateway.listLinksPage(pair.accessPackageId, nextLink, signal),
				context,
			);
			if ('deferred' in page || !page.ok) {
				return page;
			}

			if (page.value.ids.includes(pair.incompatibleAccessPackageId)) {
				return {ok: true, value: true};
			}

			nextLink = page.value.nextLink;
		} while (nextLink !== undefined);

		return {ok: true, value: false};
	}

	/**
	 * Sends one request when the gate is open and a concurrency slot is free. A 429 closes the gate and the request waits
	 * for it again, outside the slot; past the deadline (or on shutdown) the pair is deferred instead.
	 */
	async #send<T>(call: (signal: AbortSignal) => Promise<CallResult<T>>, context: RunContext): Promise<Sent<T>> {
		const gateClosed = Symbol('gate closed');
		let throttled: GraphFailure | undefined;
		for (;;) {
			const waitMs = Math.max(0, this.#gate.reopenAt - this.#clock.now());
			if (context.signal.aborted || this.#clock.now() + waitMs + minimumRequestWindowMs > context.deadline) {
				return {deferred: true, delayMs: waitMs, throttled};
			}

			try {
				// eslint-disable-next-line no-await-in-loop
				await this.#gate.whenOpen(context.signal);
			} catch {
				return {deferred: true, delayMs: 0, throttled};
			}

			// eslint-disable-next-line no-await-in-loop
			const result = await this.#limit(async (): Promise<Sent<T> | typeof gateClosed> => {
				// Queued behind others, this request may reach its slot after the gate closed again or the deadline passed.
				const now = this.#clock.now();
				if (!this.#gate.isOpen()) {
					return gateClosed;
				}

				const remaining = context.deadline - now;
				if (context.signal.aborted || remaining < minimumRequestWindowMs) {
					return {deferred: true, delayMs: 0, throttled};
				}

				const request = childSignal(context.signal, Math.min(this.#requestTimeoutMs, remaining));
				const response = await call(request.signal).finally(() => request.dispose());
				if (!response.ok && response.failure.kind === 'throttled') {
					this.#gate.close(response.failure.retryAfterMs, now);
					throttled = response.failure;
					return gateClosed;
				}

				if (response.ok) {
					this.#gate.recordSuccess();
				}

				return response;
			});
			if (result !== gateClosed) {
				return result;
			}
		}
	}
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
