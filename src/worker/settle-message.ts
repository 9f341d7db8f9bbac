// How a message settles, as a pure function: from what the engine did with its pairs (and what was handed back before
// it ran) to the dead-letter records, the re-queue messages and the counts of its log line. The handler runs the
// engine, writes what this returns, records it in the ledger and logs it; every decision is here.

import {errorFromFailure, errorInWords, failureRecord, invalidMessageRecord, invalidPairRecords, type DeadLetterReason, type DeadLetterRecord, type RecordContext} from '../dead-letter/dead-letter-record.js';
import type {PairOutcome, PairStatus} from '../engine/link-engine.js';
import type {TerminalStatus} from '../ledger/ledger.js';
import {packPairs, type MessageEncoding, type parseMessage} from '../message/message.js';
import type {Pair} from '../pair/pair.js';
import {decideRequeue, type DeferredPair, type RequeueAction, type RequeueContext, type RequeuePolicy} from './requeue-decision.js';

export type ParsedMessage = ReturnType<typeof parseMessage>;
export type PairsMessage = Extract<ParsedMessage, {kind: 'pairs'}>;

/** What a message's pairs came to: every pair counted once, under one outcome. */
export type Outcome = Exclude<PairStatus, 'dead-letter' | 'deferred'> | 'dead-letter' | 'requeued';

export interface SettleInput {
	parsed: ParsedMessage;
	/** What the engine did with the admitted pairs (none for an invalid message). */
	outcomes: readonly PairOutcome[];
	/** What became of the pairs not admitted, decided when the run began (their re-queues are written by then). */
	handedBack: readonly RequeueAction[];
	/** The moment of settling, and the message's attempt and first time in the queue. */
	context: RequeueContext;
	policy: RequeuePolicy;
	/** What each dead-letter record says of the message. */
	record: RecordContext;
	/** host.json's `messageEncoding`: re-queue messages are packed to fit the queue after it. */
	encoding: MessageEncoding;
}

export interface Settlement {
	deadLetters: DeadLetterRecord[];
	/** The re-queue messages to write now (the hand-back's were written when the run began). */
	requeueMessages: RequeueMessage[];
	/** Pairs applied or found applied, for the ledger. */
	finished: Array<{pair: Pair; status: TerminalStatus}>;
	outcomes: Record<Outcome, number>;
	/** The group rules' share of `outcomes` (an invalid pair is of no kind: counted in `outcomes` only). */
	groupOutcomes: Record<Outcome, number>;
	deadLetterReasons: Partial<Record<DeadLetterReason, number>>;
	/** The group rules' share of `deadLetterReasons`. */
	groupDeadLetterReasons: Partial<Record<DeadLetterReason, number>>;
	/** When the re-queued pairs (the hand-back's included) become visible again, in seconds from now. */
	requeueDelaySeconds: number | undefined;
}

export interface RequeueMessage {
	text: string;
	visibilityTimeoutSeconds: number;
}

/**
 * @example
 * settleMessage({parsed, outcomes, handedBack: [], context: {attempt: 0, firstEnqueuedAt, now}, policy, record, encoding: 'base64'})
 * //=> {deadLetters: [...], requeueMessages: [...], finished: [...], outcomes: {linked: 18, ...}, ...}
 */
export function settleMessage(input: SettleInput): Settlement {
	const {parsed, record, encoding} = input;
	const settlement: Settlement = {
		deadLetters: [],
		requeueMessages: [],
		finished: [],
		outcomes: noOutcomes(),
		groupOutcomes: noOutcomes(),
		deadLetterReasons: {},
		groupDeadLetterReasons: {},
		requeueDelaySeconds: undefined,
	};
	const count = (outcome: Outcome, pairs: readonly Pair[]) => {
		settlement.outcomes[outcome] += pairs.length;
		settlement.groupOutcomes[outcome] += pairs.filter(pair => pair.incompatibleGroupId !== undefined).length;
	};

	const deadLetter = (deadLetterRecord: DeadLetterRecord, pairs = 1, pair?: Pair) => {
		settlement.deadLetters.push(deadLetterRecord);
		settlement.outcomes['dead-letter'] += pairs;
		const {reason} = deadLetterRecord;
		settlement.deadLetterReasons[reason] = (settlement.deadLetterReasons[reason] ?? 0) + pairs;
		if (pair?.incompatibleGroupId !== undefined) {
			settlement.groupOutcomes['dead-letter'] += pairs;
			settlement.groupDeadLetterReasons[reason] = (settlement.groupDeadLetterReasons[reason] ?? 0) + pairs;
		}
	};

	if (parsed.kind === 'invalid-message') {
		deadLetter(invalidMessageRecord(parsed.reason, parsed.text, record));
		return settlement;
	}

	for (const invalid of invalidPairRecords(parsed.invalidPairs, record, encoding)) {
		deadLetter(invalid, invalid.invalidPairs?.length ?? 1);
	}

	const take = (actions: readonly RequeueAction[], write: boolean) => {
		for (const action of actions) {
			if (action.kind === 'requeue') {
				count('requeued', action.pairs);
				settlement.requeueDelaySeconds = Math.max(settlement.requeueDelaySeconds ?? 0, Math.ceil(action.delayMs / 1000));
				if (write) {
					settlement.requeueMessages.push(...requeueMessagesFor([action], parsed, input.context.firstEnqueuedAt, encoding));
				}
			} else {
				const error = action.lastFailure ? errorFromFailure(action.lastFailure) : errorInWords(action.detail);
				const message = action.lastFailure ? `${action.detail}; last failure: ${error.message}` : action.detail;
				deadLetter(failureRecord(action.reason, action.pair, {...error, message}, record), 1, action.pair);
			}
		}
	};

	take(input.handedBack, false);
	const deferred: DeferredPair[] = [];
	for (const outcome of input.outcomes) {
		switch (outcome.status) {
			case 'dead-letter': {
				deadLetter(failureRecord(outcome.reason, outcome.pair, errorFromFailure(outcome.failure), record), 1, outcome.pair);
				break;
			}

			case 'deferred': {
				deferred.push(outcome);
				break;
			}

			default: {
				count(outcome.status, [outcome.pair]);
				settlement.finished.push(outcome);
			}
		}
	}

	take(decideRequeue(deferred, input.context, input.policy), true);
	return settlement;
}

function noOutcomes(): Record<Outcome, number> {
	return {linked: 0, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 0, requeued: 0};
}

/** Re-queued pairs packed into messages with the message's envelope, each invisible for its delay. */
export function requeueMessagesFor(
	requeues: ReadonlyArray<Extract<RequeueAction, {kind: 'requeue'}>>,
	parsed: PairsMessage,
	firstEnqueuedAt: number,
	encoding: MessageEncoding,
): RequeueMessage[] {
	return requeues.flatMap(requeue => {
		const envelope = {
			action: parsed.action,
			correlationId: parsed.correlationId,
			attempt: requeue.attempt,
			firstEnqueuedAt: new Date(firstEnqueuedAt).toISOString(),
			origin: 'requeue' as const,
		};
		const visibilityTimeoutSeconds = Math.ceil(requeue.delayMs / 1000);
		return [...packPairs(requeue.pairs, envelope, encoding)].map(text => ({text, visibilityTimeoutSeconds}));
	});
}
