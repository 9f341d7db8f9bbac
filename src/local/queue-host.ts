// A queue host with the Functions host's storage-queue semantics, for running sod-sync without Core Tools: locally,
// in a container or on a VM, against Azurite or real Azure Storage. It polls the queue, hands each message to the same
// handler the Function uses (with a real InvocationContext), and applies host.json: batchSize, newBatchThreshold,
// maxDequeueCount and the `<queue>-poison` move, visibilityTimeout, maxPollingInterval and messageEncoding.
// A message is leased while it runs (its visibility renewed), so it is never delivered twice while alive; if the process
// dies, its messages come back when the lease runs out.

import {randomUUID} from 'node:crypto';
import functions from '@azure/functions';
import type {InvocationContext} from '@azure/functions';
import type {DequeuedMessageItem, QueueClient} from '@azure/storage-queue';
import {systemClock} from '../engine/clock.js';
import type {QueueHostConfig} from '../config/host-config.js';
import {decodeMessage, ensureQueue} from '../queue/storage-queue.js';
import {functionNames} from '../config/settings.js';

export type QueueHandler = (item: unknown, context: InvocationContext) => Promise<void>;

export interface QueueHostOptions {
	queue: QueueClient;
	/** Defaults to `<queue>-poison` on the same account, as the Functions host names it. */
	poisonQueue: QueueClient;
	config: QueueHostConfig;
	handler: QueueHandler;
	/** Defaults to `syncPairs`, the Function's name. */
	functionName?: string;
	/** How long a running message stays invisible between renewals. Defaults to 60 s (renewed every third of it). */
	leaseSeconds?: number;
	/** Receives the handler's log lines and the host's own. */
	log?: (level: 'information' | 'warning' | 'error', message: string) => void;
}

export interface QueueHostCounts {
	/** Messages the handler finished (and that were deleted). */
	completed: number;
	/** Invocations that failed; the message went back for another delivery. */
	failed: number;
	/** Messages moved to the poison queue. */
	poisoned: number;
}

export interface RunHostOptions {
	/** Return once the queue holds no message (visible or not) and nothing is in flight. */
	untilEmpty?: boolean;
	/** Stop taking messages; those in flight are finished. */
	signal?: AbortSignal;
}

const minimumPollIntervalMs = 100;

export class QueueHost {
	readonly #options: Required<Omit<QueueHostOptions, 'log'>> & Pick<QueueHostOptions, 'log'>;
	readonly #inFlight = new Set<Promise<void>>();
	readonly counts: QueueHostCounts = {completed: 0, failed: 0, poisoned: 0};

	constructor(options: QueueHostOptions) {
		if (options.leaseSeconds !== undefined && (!Number.isInteger(options.leaseSeconds) || options.leaseSeconds < 3)) {
			throw new TypeError(`Expected leaseSeconds to be a whole number from 3, got ${options.leaseSeconds}`);
		}

		this.#options = {...options, functionName: options.functionName ?? functionNames.syncPairs, leaseSeconds: options.leaseSeconds ?? 60};
	}

	get inFlight(): number {
		return this.#inFlight.size;
	}

	/** Polls until `signal` aborts (or, with `untilEmpty`, until the queue is drained); resolves when nothing is in flight. */
	async run(options: RunHostOptions = {}): Promise<QueueHostCounts> {
		const {queue, config} = this.#options;
		const {signal} = options;
		await ensureQueue(queue);
		const stopped = aborted(signal);
		let pollDelayMs = minimumPollIntervalMs;
		while (!signal?.aborted) {
			if (this.#inFlight.size > config.newBatchThreshold) {
				// eslint-disable-next-line no-await-in-loop
				await Promise.race([...this.#inFlight, stopped]);
				continue;
			}

			let items: DequeuedMessageItem[];
			try {
				// eslint-disable-next-line no-await-in-loop
				items = (await queue.receiveMessages({numberOfMessages: config.batchSize, visibilityTimeout: this.#options.leaseSeconds}))
					.receivedMessageItems;
			} catch (error) {
				this.#log('warning', `receiving from queue '${queue.name}' failed: ${(error as Error).message}; retrying`);
				items = [];
			}

			if (items.length > 0) {
				pollDelayMs = minimumPollIntervalMs;
				for (const item of items) {
					const processing = this.#process(item).finally(() => this.#inFlight.delete(processing));
					this.#inFlight.add(processing);
				}

				continue;
			}

			// eslint-disable-next-line no-await-in-loop
			if (options.untilEmpty && this.#inFlight.size === 0 && (await this.#isEmpty())) {
				break;
			}

			try {
				// eslint-disable-next-line no-await-in-loop
				await Promise.race([systemClock.sleep(pollDelayMs, signal), this.#inFlight.size > 0 ? Promise.race(this.#inFlight) : never]);
			} catch {
				break; // Aborted.
			}

			pollDelayMs = Math.min(pollDelayMs * 2, Math.max(minimumPollIntervalMs, config.maxPollingIntervalMs));
		}

		await Promise.all(this.#inFlight);
		return this.counts;
	}

	async #isEmpty(): Promise<boolean> {
		try {
			const properties = await this.#options.queue.getProperties();
			return (properties.approximateMessagesCount ?? 0) === 0;
		} catch {
			return false;
		}
	}

	async #process(item: DequeuedMessageItem): Promise<void> {
		const {queue, config, handler, leaseSeconds} = this.#options;
		let popReceipt = item.popReceipt;
		// Renewals and the final delete/update are chained, so each uses the pop receipt the one before returned.
		let leaseChain: Promise<void> = Promise.resolve();
		const renew = async () => {
			try {
				popReceipt = (await queue.updateMessage(item.messageId, popReceipt, undefined, leaseSeconds)).popReceipt!;
			} catch (error) {
				this.#log('warning', `renewing the lease on message ${item.messageId} failed: ${(error as Error).message}`);
			}
		};

		const timer = setInterval(() => {
			leaseChain = leaseChain.then(renew);
		}, (leaseSeconds * 1000) / 3);
		const settle = async (action: () => Promise<void>) => {
			clearInterval(timer);
			await leaseChain;
			await action();
		};

		const text = decodeMessage(item.messageText, config.messageEncoding);
		try {
			if (text === undefined) {
				throw new TypeError(`message ${item.messageId} is not valid ${config.messageEncoding}`);
			}

			if (item.dequeueCount > config.maxDequeueCount) {
				// Its last delivery died mid-run (the process was killed, the lease ran out): the Functions host poisons
				// such a message without running it again.
				throw new PastMaxDequeueCount(`message ${item.messageId} was already delivered ${item.dequeueCount - 1} times`);
			}

			await handler(hostItem(text), this.#context(item, popReceipt, text));
			await settle(async () => {
				await queue.deleteMessage(item.messageId, popReceipt);
			});
			this.counts.completed++;
		} catch (error) {
			const poisonNow = text === undefined || error instanceof PastMaxDequeueCount;
			await settle(async () => this.#fail(item, popReceipt, error as Error, poisonNow)).catch((settleError: unknown) => {
				// The message stays leased and comes back when the lease runs out: nothing is lost.
				this.#log('error', `could not release message ${item.messageId}: ${(settleError as Error).message}`);
			});
		}
	}

	async #fail(item: DequeuedMessageItem, popReceipt: string, error: Error, poisonNow: boolean): Promise<void> {
		const {queue, poisonQueue, config} = this.#options;
		this.counts.failed++;
		// The Functions host poisons a message it cannot decode (or already past maxDequeueCount) at once, and any other
		// after maxDequeueCount deliveries.
		if (poisonNow || item.dequeueCount >= config.maxDequeueCount) {
			await poisonQueue.createIfNotExists();
			await poisonQueue.sendMessage(item.messageText, {messageTimeToLive: -1});
			await queue.deleteMessage(item.messageId, popReceipt);
			this.counts.poisoned++;
			this.#log(
				'error',
				`message ${item.messageId} moved to '${poisonQueue.name}' after ${item.dequeueCount} deliveries: ${error.message}`,
			);
			return;
		}

		this.#log('warning', `message ${item.messageId} failed (delivery ${item.dequeueCount} of ${config.maxDequeueCount}): ${error.message}`);
		await queue.updateMessage(item.messageId, popReceipt, undefined, Math.round(config.visibilityTimeoutMs / 1000));
	}

	#context(item: DequeuedMessageItem, popReceipt: string, text: string): InvocationContext {
		return new functions.InvocationContext({
			invocationId: randomUUID(),
			functionName: this.#options.functionName,
			triggerMetadata: {
				id: item.messageId,
				dequeueCount: item.dequeueCount,
				insertionTime: item.insertedOn.toISOString(),
				expirationTime: item.expiresOn.toISOString(),
				nextVisibleTime: item.nextVisibleOn.toISOString(),
				popReceipt,
				// The host passes the message's text, and @azure/functions converts it as it converts the item.
				queueTrigger: hostItem(text),
			},
			logHandler: (level, ...args) => {
				const text = args.map(argument => (argument instanceof Error ? argument.message : String(argument))).join(' ');
				this.#log(level === 'error' || level === 'critical' ? 'error' : level === 'warning' ? 'warning' : 'information', text);
			},
		});
	}

	#log(level: 'information' | 'warning' | 'error', message: string): void {
		this.#options.log?.(level, message);
	}
}

/**
 * As Microsoft's Node.js worker hands a queue message to a v4 function: the host sends the text, and @azure/functions
 * turns it into `JSON.parse(text)`, or the text itself when that throws (its `fromRpcTypedData` / `tryJsonParse`, which
 * the package does not export). So a JSON string arrives as its inner string, `null` as null, `true` as true. The
 * conformance check in .ci/run runs the same messages through the real worker and compares.
 */
export function hostItem(text: string): unknown {
	try {
		return JSON.parse(text) as unknown;
	} catch {
		return text;
	}
}

class PastMaxDequeueCount extends Error {
	override name = 'PastMaxDequeueCount';
}

const never = new Promise<never>(() => {
	// Never settles: a race that should wait on the other side only.
});

async function aborted(signal: AbortSignal | undefined): Promise<void> {
	if (!signal) {
		return never;
	}

	if (signal.aborted) {
		return;
	}

	await new Promise<void>(resolve => {
		signal.addEventListener('abort', () => resolve(), {once: true});
	});
}
