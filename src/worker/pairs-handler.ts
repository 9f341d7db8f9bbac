// The storage-queue handler: one pairs message in; links in Graph, dead letters and re-queues out.
// The Function, the local queue host and the tests all call this same handler.

import {randomUUID} from 'node:crypto';
import type {InvocationContext} from '@azure/functions';
import pLimit from 'p-limit';
import {
	errorFromFailure,
	errorInWords,
	failureRecord,
	invalidMessageRecord,
	invalidPairRecords,
	maximumRecordBytes,
	type DeadLetterReason,
	type DeadLetterRecord,
	type RecordContext,
} from '../dead-letter/dead-letter-record.js';
import type {Clock} from '../engine/clock.js';
import {systemClock} from '../engine/clock.js';
import {InternalError} from '../engine/batch-dispatcher.js';
import {SystemicFailure, type LinkEngine, type PairOutcome, type PairStatus} from '../engine/link-engine.js';
import {encodedSize, packPairs, parseMessage, type MessageEncoding} from '../message/message.js';
import type {Pair} from '../pair/pair.js';
import type {MessageSink} from '../queue/storage-queue.js';
import {settingNames} from '../config/settings.js';
import type {RawMessageStore} from '../storage/raw-message-store.js';
import {printable} from '../text/untrusted-text.js';
import {accountFor, type PreImage, type TerminalStatus} from '../ledger/ledger.js';
import type {WorkerLedger} from '../ledger/worker-ledger.js';
import {packageIds} from '../graph/link-gateway.js';
import {decideRequeue, type DeferredPair, type RequeueAction} from './requeue-decision.js';

export interface WorkerDependencies {
	engine: LinkEngine;
	/** Where unfinished pairs go back (the pairs queue). */
	pairsQueue: MessageSink;
	deadLetterQueue: MessageSink;
	/** host.json's `messageEncoding`: re-queued messages are packed to fit the queue's limit after it. */
	encoding: MessageEncoding;
	invocationBudgetMs: number;
	maxAttempts: number;
	/** A pair not applied this long after it first entered the queue is dead-lettered `expired`. */
	maxPairAgeMs: number;
	/** Keeps the raw text of an unreadable message too large for its record; without one, such a message fails (and is poisoned whole). */
	rawMessages?: RawMessageStore;
	clock?: Clock;
	/** Aborts in-flight work (host shutdown): unfinished pairs are re-queued. */
	signal?: AbortSignal;
	/**
	 * The import ledger: each settled message that carries a correlation id is recorded there, accounted against the
	 * pre-image of its packages. Without one (SOD_LEDGER_RETENTION_DAYS=0, or no table endpoint) nothing is recorded.
	 */
	ledger?: WorkerLedger;
	/** Called once per message handled, after its outputs are written. */
	onSummary?: (summary: MessageSummary) => void;
}

export type Outcome = Exclude<PairStatus, 'dead-letter' | 'deferred'> | 'dead-letter' | 'requeued';

export interface MessageSummary {
	messageId: string | undefined;
	correlationId: string | undefined;
	/** Failed attempts the pairs had spent before, plus one: 1 for a message's first invocation. */
	attempts: number;
	pairs: number;
	outcomes: Record<Outcome, number>;
	deadLetters: Partial<Record<DeadLetterReason, number>>;
	/** When re-queued pairs become visible again, in seconds from now. */
	requeueDelaySeconds: number | undefined;
	durationMs: number;
	/** How long its pairs had waited since they first entered the queue, when it settled (a re-queue carries the first time). */
	ageMs: number;
}

/** Writes to the output queues at once, per message. */
const outputConcurrency = 16;

/**
 * @example
 * app.storageQueue('syncPairs', {queueName: '%SOD_QUEUE%', connection: 'AzureWebJobsStorage',
 *   handler: createPairsHandler(() => runtime)});
 */
export function createPairsHandler(
	dependencies: WorkerDependencies | (() => WorkerDependencies),
): (item: unknown, context: InvocationContext) => Promise<void> {
	return async (item, context) => {
		const resolved = typeof dependencies === 'function' ? dependencies() : dependencies;
		await handlePairsMessage(item, context, resolved);
	};
}

export async function handlePairsMessage(
	item: unknown,
	context: InvocationContext,
	dependencies: WorkerDependencies,
): Promise<MessageSummary> {
	const clock = dependencies.clock ?? systemClock;
	const startedAt = clock.now();
	const messageId = stringOrUndefined(context.triggerMetadata?.id);
	// Under Microsoft's worker the item is the message text as JSON.parse read it (the text itself when that fails), and
	// triggerMetadata.queueTrigger is converted the same way: a message that is JSON of the wrong shape reaches the
	// handler only parsed, so its record holds the re-serialisation; text that is not JSON is kept byte for byte.
	const parsed = parseMessage(item);
	const summary: MessageSummary = {
		messageId,
		correlationId: parsed.kind === 'pairs' ? parsed.correlationId : undefined,
		attempts: parsed.kind === 'pairs' ? parsed.attempt + 1 : 1,
		pairs: parsed.kind === 'pairs' ? parsed.pairs.length + parsed.invalidPairs.length : 0,
		outcomes: {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0},
		deadLetters: {},
		requeueDelaySeconds: undefined,
		durationMs: 0,
		ageMs: 0,
	};
	const deadLetters: DeadLetterRecord[] = [];
	const addDeadLetter = (record: DeadLetterRecord, pairs = 1) => {
		deadLetters.push(record);
		summary.outcomes['dead-letter'] += pairs;
		summary.deadLetters[record.reason] = (summary.deadLetters[record.reason] ?? 0) + pairs;
	};

	const recordContext = (): RecordContext => ({
		action: parsed.kind === 'pairs' ? parsed.action : null,
		attempts: summary.attempts,
		correlationId: summary.correlationId,
		sourceMessageId: messageId,
		at: new Date(clock.now()),
	});

	const requeues: Array<{pairs: Pair[]; delayMs: number; attempt: number}> = [];
	const finished: Array<{pair: Pair; status: TerminalStatus}> = [];
	const ledger = parsed.kind === 'pairs' && parsed.correlationId !== undefined ? dependencies.ledger : undefined;
	const preImages = new Map<string, PreImage>();
	const firstEnqueuedAt = (parsed.kind === 'pairs' ? parsed.firstEnqueuedAt : undefined) ?? insertionTime(context) ?? startedAt;
	if (parsed.kind === 'invalid-message') {
		addDeadLetter(invalidMessageRecord(parsed.reason, parsed.text, recordContext()));
	} else {
		for (const record of invalidPairRecords(parsed.invalidPairs, recordContext(), dependencies.encoding)) {
			addDeadLetter(record, record.invalidPairs?.length ?? 1);
		}

		const policy = {maxAttempts: dependencies.maxAttempts, maxPairAgeMs: dependencies.maxPairAgeMs};
		/** Counts the actions, dead-letters what they say to, and returns the re-queues for the caller to write. */
		const take = (actions: RequeueAction[]) => {
			const requeued: Array<Extract<RequeueAction, {kind: 'requeue'}>> = [];
			for (const action of actions) {
				if (action.kind === 'requeue') {
					requeued.push(action);
					summary.outcomes.requeued += action.pairs.length;
					summary.requeueDelaySeconds = Math.max(summary.requeueDelaySeconds ?? 0, Math.ceil(action.delayMs / 1000));
				} else {
					const error = action.lastFailure ? errorFromFailure(action.lastFailure) : errorInWords(action.detail);
					const message = action.lastFailure ? `${action.detail}; last failure: ${error.message}` : action.detail;
					addDeadLetter(failureRecord(action.reason, action.pair, {...error, message}, recordContext()));
				}
			}

			return requeued;
		};

		const deadline = startedAt + dependencies.invocationBudgetMs;
		// Admission by pace: take no more than this process can send before the deadline. `run` counts what it holds
		// before it first awaits, so that two messages arriving together are weighed one after the other.
		const admitted = dependencies.engine.admit(parsed.pairs.length, deadline);
		const notAdmitted = parsed.pairs.slice(admitted);
		// The ledger's pre-images: what was linked before the import, per package, known before its first write (each
		// pair waits for its own package's, read once per import; the rest of the message goes on meanwhile).
		const admittedPairs = parsed.pairs.slice(0, admitted);
		const loading = ledger?.preImages(parsed.correlationId!, admittedPairs, async accessPackageId => {
			const read = await dependencies.engine.readAll({kind: 'list', accessPackageId, nextLink: undefined}, {deadline, signal: dependencies.signal});
			return read.kind === 'ok' ? {kind: 'ok', value: packageIds(read.value)} : read;
		});
		const before = loading
			? async (pair: Pair) => {
					preImages.set(pair.accessPackageId, await loading.get(pair.accessPackageId));
				}
			: undefined;
		const running = dependencies.engine.run(admittedPairs, parsed.action, {deadline, signal: dependencies.signal, before});
		// The rest goes back on the queue at once, while the admitted pairs run, for an instance or an invocation with
		// room: held until this invocation ends, it would wait as long again before anyone could take it.
		let handedBack: Promise<Awaited<ReturnType<typeof writeResults>>> = Promise.resolve(undefined);
		if (notAdmitted.length > 0) {
			const handBack = take(
				decideRequeue(
					{deferred: [], notAdmitted, admissionDelayMs: dependencies.engine.admissionDelayMs(deadline), attempt: parsed.attempt, firstEnqueuedAt, now: clock.now()},
					policy,
				),
			);
			handedBack = writeResults([], requeueMessagesFor(handBack, parsed, firstEnqueuedAt, dependencies), dependencies);
		}

		let outcomes: PairOutcome[];
		try {
			outcomes = await running;
		} catch (error) {
			await handedBack; // Settled, whatever it did: the message comes back whole, and re-adding is harmless.
			failInvocation(error, messageId, context);
		}

		const failedHandBack = await handedBack;
		if (failedHandBack) {
			context.error(
				`sod-sync message ${messageId ?? '?'}: handing ${notAdmitted.length} pairs back to the queue failed (${failedHandBack.error.message}); the message will be retried`,
			);
			throw failedHandBack.error;
		}

		const deferred: DeferredPair[] = [];
		for (const outcome of outcomes) {
			if (outcome.status === 'dead-letter') {
				addDeadLetter(failureRecord(outcome.reason, outcome.pair, errorFromFailure(outcome.failure), recordContext()));
			} else if (outcome.status === 'deferred') {
				deferred.push(outcome);
			} else {
				summary.outcomes[outcome.status]++;
				finished.push(outcome);
			}
		}

		requeues.push(...take(decideRequeue({deferred, notAdmitted: [], admissionDelayMs: 0, attempt: parsed.attempt, firstEnqueuedAt, now: clock.now()}, policy)));
	}

	// Written before returning: if any write fails the invocation fails and the message comes back (adds are idempotent).
	const requeueMessages = parsed.kind === 'pairs' ? requeueMessagesFor(requeues, parsed, firstEnqueuedAt, dependencies) : [];
	const failedWrites = await writeResults(deadLetters, requeueMessages, dependencies);
	if (failedWrites) {
		context.error(
			`sod-sync message ${messageId ?? '?'}: ${failedWrites.failed} of ${failedWrites.total} dead-letter/re-queue writes failed (${failedWrites.error.message}); the message will be retried`,
		);
		throw failedWrites.error;
	}

	if (ledger && parsed.kind === 'pairs') {
		// After the outputs: a message whose outputs failed comes back, and is recorded when it settles.
		const accounting = accountFor(finished, parsed.action, accessPackageId => preImages.get(accessPackageId));
		await ledger.settle({
			correlationId: parsed.correlationId!,
			messageId: messageId ?? randomUUID(),
			origin: parsed.origin,
			pairs: summary.pairs,
			...accounting,
			deadLetter: summary.outcomes['dead-letter'],
			deadLetters: summary.deadLetters,
			requeued: summary.outcomes.requeued,
			settledAt: new Date(clock.now()),
		});
	}

	summary.durationMs = clock.now() - startedAt;
	summary.ageMs = Math.max(0, clock.now() - firstEnqueuedAt);
	context.log(describeSummary(summary));
	if (summary.deadLetters.forbidden) {
		context.warn(forbiddenAdvice(summary));
	}

	dependencies.onSummary?.(summary);
	return summary;
}

/**
 * Fails the invocation, so the host hands the message back: Graph refused the credential (not the pairs' fault: no
 * dead letters; the host retries after visibilityTimeout and poisons after maxDequeueCount tries), or sod-sync's own bug.
 */
function failInvocation(error: unknown, messageId: string | undefined, context: InvocationContext): never {
	if (error instanceof SystemicFailure) {
		context.error(
			`sod-sync message ${messageId ?? '?'}: ${error.message.replace(/\.+$/, '')}. The message will be retried; check the identity's Graph permission and credential.`,
		);
	} else {
		// Never Graph's answer: nothing is dead-lettered, and the message comes back whole.
		context.error(
			`sod-sync message ${messageId ?? '?'}: ${error instanceof InternalError ? error.message : `an internal error in sod-sync: ${String((error as Error)?.stack ?? error)}`}. Nothing was dead-lettered; the message will be retried (please report this).`,
		);
	}

	throw error;
}

/** The re-queued pairs packed into messages with the message's envelope, each invisible for its delay. */
function requeueMessagesFor(
	requeues: ReadonlyArray<{pairs: Pair[]; delayMs: number; attempt: number}>,
	parsed: Extract<ReturnType<typeof parseMessage>, {kind: 'pairs'}>,
	firstEnqueuedAt: number,
	dependencies: WorkerDependencies,
): Array<{text: string; visibilityTimeoutSeconds: number}> {
	return requeues.flatMap(requeue => {
		const envelope = {
			action: parsed.action,
			correlationId: parsed.correlationId,
			attempt: requeue.attempt,
			firstEnqueuedAt: new Date(firstEnqueuedAt).toISOString(),
			origin: 'requeue' as const,
		};
		const visibilityTimeoutSeconds = Math.ceil(requeue.delayMs / 1000);
		return [...packPairs(requeue.pairs, envelope, dependencies.encoding)].map(text => ({text, visibilityTimeoutSeconds}));
	});
}

/**
 * Writes the dead letters and the re-queue messages, at most `outputConcurrency` at once. Every write settles before
 * it returns; undefined when all succeeded.
 */
async function writeResults(
	deadLetters: readonly DeadLetterRecord[],
	requeueMessages: ReadonlyArray<{text: string; visibilityTimeoutSeconds: number}>,
	dependencies: WorkerDependencies,
): Promise<{failed: number; total: number; error: Error} | undefined> {
	const limit = pLimit(outputConcurrency);
	const writes = [
		...deadLetters.map(async record => limit(async () => dependencies.deadLetterQueue.send(await recordText(record, dependencies)))),
		...requeueMessages.map(async ({text, visibilityTimeoutSeconds}) => limit(async () => dependencies.pairsQueue.send(text, {visibilityTimeoutSeconds}))),
	];

	const written = await Promise.allSettled(writes);
	const failed = written.filter(result => result.status === 'rejected');
	return failed.length > 0 ? {failed: failed.length, total: written.length, error: (failed[0] as PromiseRejectedResult).reason as Error} : undefined;
}

/**
 * The record's text as it is written: whole when it fits a queue message once encoded; an unreadable message too large
 * to sit inline goes to a blob first, named in the record. Anything else too large cannot happen (pairs and errors are
 * bounded), but would fail the invocation rather than be cut.
 */
async function recordText(record: DeadLetterRecord, dependencies: WorkerDependencies): Promise<string> {
	const text = JSON.stringify(record);
	if (encodedSize(text, dependencies.encoding) <= maximumRecordBytes) {
		return text;
	}

	if (record.reason !== 'invalid-message' || record.message === null || !dependencies.rawMessages) {
		throw new Error(`a ${record.reason} dead-letter record does not fit a queue message and has nowhere else to go (blob storage for ${settingNames.deadLetterContainer})`);
	}

	const messageBlob = await dependencies.rawMessages.save(record.message, record.sourceMessageId ?? undefined);
	return JSON.stringify({...record, message: null, messageBlob});
}

/** The one log line per message. */
export function describeSummary(summary: MessageSummary): string {
	const counts = Object.entries(summary.outcomes)
		.filter(([, count]) => count > 0)
		.map(([outcome, count]) => {
			if (outcome === 'dead-letter') {
				const reasons = Object.entries(summary.deadLetters).map(([reason, n]) => `${reason} ${n}`);
				return `dead-letter ${count} (${reasons.join(', ')})`;
			}

			if (outcome === 'requeued') {
				return `requeued ${count} (visible in ${summary.requeueDelaySeconds}s)`;
			}

			return `${outcome} ${count}`;
		});
	return [
		`sod-sync message ${summary.messageId ?? '?'}`,
		`attempt ${summary.attempts}`,
		`${summary.pairs} pairs: ${counts.length > 0 ? counts.join(', ') : 'nothing to do'}`,
		`${summary.durationMs} ms`,
		`correlation ${summary.correlationId === undefined ? '-' : printable(summary.correlationId, 256)}`,
	].join('; ');
}

/**
 * What to do about 403s. The likeliest cause on a new deployment is a grant made after the app first took a token: a
 * managed identity's token is cached for up to about 24 hours and cannot be refreshed on demand, so the 403s go on
 * after the grant until it expires.
 */
export function forbiddenAdvice(summary: Pick<MessageSummary, 'messageId' | 'deadLetters'>): string {
	return [
		`sod-sync message ${summary.messageId ?? '?'}: ${summary.deadLetters.forbidden} pairs dead-lettered forbidden (Graph answered 403).`,
		`The app's identity needs the application permission EntitlementManagement.ReadWrite.All: run \`sod-sync grant <identity principal id>\``,
		`before the first message is enqueued or the timer is enabled. A managed identity's token is cached for up to about 24 hours,`,
		`so a token taken before the grant keeps failing until it expires; then send them back with \`sod-sync dead-letters redrive --reason forbidden\`.`,
	].join(' ');
}

/** When the host says the message entered the queue: the pairs' age when the envelope does not say. */
function insertionTime(context: InvocationContext): number | undefined {
	const value = context.triggerMetadata?.insertionTime;
	const at = typeof value === 'string' || value instanceof Date ? new Date(value).getTime() : Number.NaN;
	return Number.isFinite(at) ? at : undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
	return typeof value === 'string' && value !== '' ? value : undefined;
}
