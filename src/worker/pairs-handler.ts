// The storage-queue handler: one pairs message in; links in Graph, dead letters and re-queues out.
// The Function, the local queue host and the tests all call this same handler.

import {randomUUID} from 'node:crypto';
import {setMaxListeners} from 'node:events';
import type {InvocationContext} from '@azure/functions';
import pLimit from 'p-limit';
import {maximumRecordBytes, type DeadLetterReason, type DeadLetterRecord} from '../dead-letter/dead-letter-record.js';
import type {Clock} from '../engine/clock.js';
import {systemClock} from '../engine/clock.js';
import {InternalError} from '../engine/batch-dispatcher.js';
import {childSignal} from '../engine/child-signal.js';
import {SystemicFailure, type LinkEngine, type PairOutcome} from '../engine/link-engine.js';
import {encodedSize, parseMessage, type MessageEncoding} from '../message/message.js';
import type {Pair} from '../pair/pair.js';
import type {MessageSink} from '../queue/storage-queue.js';
import {settingNames} from '../config/settings.js';
import type {RawMessageStore} from '../storage/raw-message-store.js';
import {printable} from '../text/untrusted-text.js';
import {accountFor, preImageKey, type PreImage} from '../ledger/ledger.js';
import type {WorkerLedger} from '../ledger/worker-ledger.js';
import {linkListOperation, packageIds} from '../graph/link-gateway.js';
import {decideHandBack, type RequeueAction} from './requeue-decision.js';
import {requeueMessagesFor, settleMessage, type Outcome} from './settle-message.js';

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

export type {Outcome} from './settle-message.js';

export interface MessageSummary {
	messageId: string | undefined;
	correlationId: string | undefined;
	/** Failed attempts the pairs had spent before, plus one: 1 for a message's first invocation. */
	attempts: number;
	pairs: number;
	outcomes: Record<Outcome, number>;
	/** The group rules' share of `outcomes`. */
	groupOutcomes: Record<Outcome, number>;
	deadLetters: Partial<Record<DeadLetterReason, number>>;
	/** The group rules' share of `deadLetters`. */
	groupDeadLetters: Partial<Record<DeadLetterReason, number>>;
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
	const attempt = parsed.kind === 'pairs' ? parsed.attempt : 0;
	const firstEnqueuedAt = (parsed.kind === 'pairs' ? parsed.firstEnqueuedAt : undefined) ?? insertionTime(context) ?? startedAt;
	const policy = {maxAttempts: dependencies.maxAttempts, maxPairAgeMs: dependencies.maxPairAgeMs};
	const ledger = parsed.kind === 'pairs' && parsed.correlationId !== undefined ? dependencies.ledger : undefined;
	const preImages = new Map<string, PreImage>();
	let outcomes: PairOutcome[] = [];
	let handedBack: RequeueAction[] = [];
	if (parsed.kind === 'pairs') {
		const deadline = startedAt + dependencies.invocationBudgetMs;
		// Admission by pace: take no more than this process can send before the deadline. `run` counts what it holds
		// before it first awaits, so that two messages arriving together are weighed one after the other.
		const admitted = dependencies.engine.admit(parsed.pairs.length, deadline);
		const notAdmitted = parsed.pairs.slice(admitted);
		// The ledger's pre-images: what was linked before the import, per link list (a package's incompatible packages or
		// groups), known before its first write (each pair waits for its own list's, read once per import; the rest of
		// the message goes on meanwhile).
		const admittedPairs = parsed.pairs.slice(0, admitted);
		// The pre-image reads and the run wait on the gate and the pace, each listening for the host's shutdown: on a
		// signal of the invocation's own, so that dozens of them do not pile listeners on the host's (one per message).
		const invocation = childSignal(dependencies.signal);
		setMaxListeners(admittedPairs.length + 10, invocation.signal);
		const loading = ledger?.preImages(parsed.correlationId!, admittedPairs, async (accessPackageId, kind) => {
			const read = await dependencies.engine.readAll(linkListOperation(accessPackageId, kind), {deadline, signal: invocation.signal});
			return read.kind === 'ok' ? {kind: 'ok', value: packageIds(read.value)} : read;
		});
		const before = loading
			? async (pair: Pair) => {
					const key = preImageKey(pair);
					preImages.set(key, await loading.get(key));
				}
			: undefined;
		const running = dependencies.engine.run(admittedPairs, parsed.action, {deadline, signal: invocation.signal, before});
		// The rest goes back on the queue at once, while the admitted pairs run, for an instance or an invocation with
		// room: held until this invocation ends, it would wait as long again before anyone could take it.
		let handingBack: Promise<Awaited<ReturnType<typeof writeResults>>> = Promise.resolve(undefined);
		if (notAdmitted.length > 0) {
			handedBack = decideHandBack(notAdmitted, dependencies.engine.admissionDelayMs(deadline), {attempt, firstEnqueuedAt, now: clock.now()}, policy);
			const requeues = handedBack.filter(action => action.kind === 'requeue');
			handingBack = writeResults([], requeueMessagesFor(requeues, parsed, firstEnqueuedAt, dependencies.encoding), dependencies);
		}

		try {
			outcomes = await running;
		} catch (error) {
			await handingBack; // Settled, whatever it did: the message comes back whole, and re-adding is harmless.
			failInvocation(error, messageId, context);
		} finally {
			invocation.dispose(); // Every pair has run, so every pre-image it waited for has been read.
		}

		const failedHandBack = await handingBack;
		if (failedHandBack) {
			context.error(
				`sod-sync message ${messageId ?? '?'}: handing ${notAdmitted.length} pairs back to the queue failed (${failedHandBack.error.message}); the message will be retried`,
			);
			throw failedHandBack.error;
		}
	}

	const correlationId = parsed.kind === 'pairs' ? parsed.correlationId : undefined;
	const settledAt = clock.now();
	const settlement = settleMessage({
		parsed,
		outcomes,
		handedBack,
		context: {attempt, firstEnqueuedAt, now: settledAt},
		policy,
		record: {action: parsed.kind === 'pairs' ? parsed.action : null, attempts: attempt + 1, correlationId, sourceMessageId: messageId, at: new Date(settledAt)},
		encoding: dependencies.encoding,
	});

	// Written before returning: if any write fails the invocation fails and the message comes back (adds are idempotent).
	const failedWrites = await writeResults(settlement.deadLetters, settlement.requeueMessages, dependencies);
	if (failedWrites) {
		context.error(
			`sod-sync message ${messageId ?? '?'}: ${failedWrites.failed} of ${failedWrites.total} dead-letter/re-queue writes failed (${failedWrites.error.message}); the message will be retried`,
		);
		throw failedWrites.error;
	}

	const summary: MessageSummary = {
		messageId,
		correlationId,
		attempts: attempt + 1,
		pairs: parsed.kind === 'pairs' ? parsed.pairs.length + parsed.invalidPairs.length : 0,
		outcomes: settlement.outcomes,
		groupOutcomes: settlement.groupOutcomes,
		deadLetters: settlement.deadLetterReasons,
		groupDeadLetters: settlement.groupDeadLetterReasons,
		requeueDelaySeconds: settlement.requeueDelaySeconds,
		durationMs: 0,
		ageMs: 0,
	};
	if (ledger && parsed.kind === 'pairs') {
		// After the outputs: a message whose outputs failed comes back, and is recorded when it settles.
		const accounting = accountFor(settlement.finished, parsed.action, key => preImages.get(key));
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
	// After the totals, so that a reader (the workbook's `extract`) finding the first `linked N` finds the total.
	const groups = Object.entries(summary.groupOutcomes ?? {}).filter(([, count]) => count > 0).map(([outcome, count]) => `${outcome} ${count}`);
	return [
		`sod-sync message ${summary.messageId ?? '?'}`,
		`attempt ${summary.attempts}`,
		`${summary.pairs} pairs: ${counts.length > 0 ? counts.join(', ') : 'nothing to do'}`,
		...(groups.length > 0 ? [`of which group rules: ${groups.join(', ')}`] : []),
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
