// The import ledger's model: what the worker records for each message it settles, how an outcome is told apart from
// what was there before the import (the pre-image), and how an import's status is added up from its records. Pure:
// the storage is ledger-store.ts, the worker's side worker-ledger.ts.
//
// Exactness under redelivery rests on the pre-image. Before the first of an import's writes to a package, the worker
// reads that package's links once and stores them (first writer wins), so "was this link there before the import?"
// has one answer for every message and every instance, even when a worker is killed after Graph applied a write it
// never recorded: the message comes back, the write answers "already linked", and the pre-image says it was not there
// before, so the import did it ("found"). Duplicates of a pair across an import's messages are counted once in the
// same way, when the status is added up.

import type {DeadLetterReason} from '../engine/retry-decision.js';
import {pairKey, pairTarget, type LinkAction, type Pair} from '../pair/pair.js';

/** What a message's pairs became, in the order status prints them. `requeued`: back in the queue, to be tried again. */
export const outcomeNames = ['linked', 'already-linked', 'removed', 'already-absent', 'dead-letter', 'requeued'] as const;
export type LedgerOutcome = (typeof outcomeNames)[number];

/**
 * Where a message's pairs came from: `import` (a producer or `enqueue`), `requeue` (the worker sent them back: they
 * were counted out by the message that did), `redrive` (from the dead-letter queue: they were counted dead-lettered).
 */
export type MessageOrigin = 'import' | 'requeue' | 'redrive';
export const messageOrigins: readonly MessageOrigin[] = ['import', 'requeue', 'redrive'];

/** One settled message: written once (a redelivered message that was settled already is not counted again). */
export interface Settlement {
	correlationId: string;
	/** The queue message's id: a redelivery has the same one. */
	messageId: string;
	origin: MessageOrigin;
	/** Pairs the message carried (valid, each once, and invalid). Always `settled + requeued`. */
	pairs: number;
	linked: number;
	alreadyLinked: number;
	removed: number;
	alreadyAbsent: number;
	deadLetter: number;
	deadLetters: Partial<Record<DeadLetterReason, number>>;
	requeued: number;
	/** Links this message added that were not there before the import. */
	linkedPairs: Pair[];
	/** Links this message removed that were there before the import. */
	removedPairs: Pair[];
	/**
	 * Found linked though the pre-image says they were not there before: added by this import, in another message (a
	 * duplicate) or in an attempt that was killed before it could record them. Counted once when the status is added up.
	 */
	foundLinked: Pair[];
	/** The same for removals: found absent though they were there before the import. */
	foundAbsent: Pair[];
	/** Pairs whose package's pre-image could not be read: counted as Graph answered, without the pre-image's check. */
	withoutPreImage: number;
	settledAt: Date;
}

/** What `enqueue` (or `undo`) records when it starts an import, and again when it has sent it. */
export interface ImportRecord {
	correlationId: string;
	/** The file name, or `stdin`. */
	source: string;
	/** Valid pairs enqueued, as the worker counts them (each direction of a symmetric row; duplicates within a message once). */
	pairs: number;
	invalidRows: number;
	/** Rows that repeated a pair already in the same message (sent once). */
	duplicateRows: number;
	startedAt: Date;
	/** `enqueuing` while it is being sent; `interrupted` when sending stopped part-way (`pairs` is what was sent). */
	state: 'enqueuing' | 'enqueued' | 'interrupted';
	/** For an undo: the import it undoes. */
	undoOf?: string;
}

/** A link list's ids before the import first wrote to it; undefined when they could not be read. */
export type PreImage = ReadonlySet<string> | undefined;

/**
 * The link list a pair's link is on, which is what a pre-image is of: `A` for package `A`'s incompatible packages,
 * `A|groups` for its incompatible groups (a row key of the ledger's table may not hold `/`).
 */
export function preImageKey(pair: Pair): string {
	return pair.incompatibleGroupId === undefined ? pair.accessPackageId : `${pair.accessPackageId}|groups`;
}

export type TerminalStatus = 'linked' | 'already-linked' | 'removed' | 'already-absent';

export interface Accounting {
	linked: number;
	alreadyLinked: number;
	removed: number;
	alreadyAbsent: number;
	linkedPairs: Pair[];
	removedPairs: Pair[];
	foundLinked: Pair[];
	foundAbsent: Pair[];
	withoutPreImage: number;
}

/**
 * Accounts for a message's finished pairs against the pre-image of each one's package. A change is what the import
 * did: a link added that was not there before it, or removed that was. A write that Graph applied to a link the
 * pre-image had the other way (someone else changed it meanwhile) is not the import's change: undo must leave what was
 * there before the import as it was.
 *
 * @example
 * accountFor([{pair, status: 'already-linked'}], 'add', () => new Set()) //=> foundLinked: [pair]
 */
export function accountFor(
	finished: ReadonlyArray<{pair: Pair; status: TerminalStatus}>,
	action: LinkAction,
	/** The pre-image of a link list, by `preImageKey`. */
	preImageOf: (key: string) => PreImage,
): Accounting {
	const accounting: Accounting = {
		linked: 0,
		alreadyLinked: 0,
		removed: 0,
		alreadyAbsent: 0,
		linkedPairs: [],
		removedPairs: [],
		foundLinked: [],
		foundAbsent: [],
		withoutPreImage: 0,
	};
	for (const {pair, status} of finished) {
		const before = preImageOf(preImageKey(pair));
		const wasLinked = before?.has(pairTarget(pair));
		if (before === undefined) {
			accounting.withoutPreImage++;
		}

		if (action === 'add') {
			if (wasLinked === true) {
				accounting.alreadyLinked++;
			} else if (status === 'linked') {
				accounting.linked++;
				accounting.linkedPairs.push(pair);
			} else if (wasLinked === false) {
				accounting.foundLinked.push(pair);
			} else {
				accounting.alreadyLinked++;
			}
		} else if (wasLinked === false) {
			accounting.alreadyAbsent++;
		} else if (status === 'removed') {
			accounting.removed++;
			accounting.removedPairs.push(pair);
		} else if (wasLinked === true) {
			accounting.foundAbsent.push(pair);
		} else {
			accounting.alreadyAbsent++;
		}
	}

	return accounting;
}

export interface ImportStatus {
	correlationId: string;
	/** Undefined when no import record exists (a producer that is not `enqueue` used this correlation id). */
	import: ImportRecord | undefined;
	/** Pairs enqueued (the import record's count); undefined without one. */
	pairs: number | undefined;
	/** Every outcome; `dead-letter` is the total of `deadLetters` less the pairs redriven since. */
	outcomes: Record<LedgerOutcome, number>;
	deadLetters: Partial<Record<DeadLetterReason, number>>;
	/** Pairs sent back from the dead-letter queue (each counts dead-lettered until it settles again). */
	redriven: number;
	/** Pairs no worker has taken yet: `pairs` less every outcome. Undefined without an import record. */
	pending: number | undefined;
	/** True when the import has been sent whole and every pair has settled. */
	done: boolean;
	/** Pairs settled per second over the last minute (since the import started if later); when done, over the run. */
	ratePerSecond: number;
	/** Seconds until done at that rate; undefined when nothing moved in the last minute or nothing is left. */
	etaSeconds: number | undefined;
	/** The import's changes, each once: links added that were not there before it, and removed that were. */
	changed: {linked: number; removed: number};
	/** Pairs counted without a pre-image (its read failed): their linked/already-linked split is as Graph answered. */
	withoutPreImage: number;
	messages: number;
	firstSettledAt: Date | undefined;
	lastSettledAt: Date | undefined;
}

/**
 * Adds an import's settlements up. With an import record, `pairs = every outcome + pending` exactly: each settlement's
 * pairs are its settled pairs plus its re-queued ones, a re-queue's pairs were counted out by the message that sent
 * them, and a redrive's were counted dead-lettered.
 *
 * @example
 * const status = importStatus('import-42', record, settlements, new Date());
 * status.pending === 0 && status.done
 */
export function importStatus(
	correlationId: string,
	record: ImportRecord | undefined,
	settlements: readonly Settlement[],
	now: Date,
): ImportStatus {
	const taken: Record<MessageOrigin, number> = {import: 0, requeue: 0, redrive: 0};
	let linked = 0;
	let alreadyLinked = 0;
	let removed = 0;
	let alreadyAbsent = 0;
	let deadLetter = 0;
	let requeuedOut = 0;
	let withoutPreImage = 0;
	let settledLastMinute = 0;
	const deadLetters: Partial<Record<DeadLetterReason, number>> = {};
	const changedLinks = new Set<string>();
	const changedRemovals = new Set<string>();
	let firstSettledAt: Date | undefined;
	let lastSettledAt: Date | undefined;
	for (const settlement of settlements) {
		taken[settlement.origin] += settlement.pairs;
		linked += settlement.linked;
		alreadyLinked += settlement.alreadyLinked + settlement.foundLinked.length;
		removed += settlement.removed;
		alreadyAbsent += settlement.alreadyAbsent + settlement.foundAbsent.length;
		deadLetter += settlement.deadLetter;
		requeuedOut += settlement.requeued;
		withoutPreImage += settlement.withoutPreImage;
		for (const [reason, count] of Object.entries(settlement.deadLetters) as Array<[DeadLetterReason, number]>) {
			deadLetters[reason] = (deadLetters[reason] ?? 0) + count;
		}

		for (const pair of settlement.linkedPairs) {
			changedLinks.add(pairKey(pair));
		}

		for (const pair of settlement.removedPairs) {
			changedRemovals.add(pairKey(pair));
		}

		if (now.getTime() - settlement.settledAt.getTime() <= 60_000) {
			settledLastMinute += settlement.pairs - settlement.requeued;
		}

		firstSettledAt = firstSettledAt === undefined || settlement.settledAt < firstSettledAt ? settlement.settledAt : firstSettledAt;
		lastSettledAt = lastSettledAt === undefined || settlement.settledAt > lastSettledAt ? settlement.settledAt : lastSettledAt;
	}

	// A found link that no message recorded adding was added by an attempt that died before recording it: it is a change,
	// and counts linked rather than already-linked. One some message did record is a duplicate: it stays already-linked.
	// The counts are moved, never made up: linked + already-linked stays the pairs that ended linked.
	for (const settlement of settlements) {
		for (const pair of settlement.foundLinked) {
			const key = pairKey(pair);
			if (!changedLinks.has(key)) {
				changedLinks.add(key);
				linked++;
				alreadyLinked--;
			}
		}

		for (const pair of settlement.foundAbsent) {
			const key = pairKey(pair);
			if (!changedRemovals.has(key)) {
				changedRemovals.add(key);
				removed++;
				alreadyAbsent--;
			}
		}
	}

	const redriven = taken.redrive;
	const requeued = requeuedOut - taken.requeue;
	const outcomes: Record<LedgerOutcome, number> = {
		linked,
		'already-linked': alreadyLinked,
		removed,
		'already-absent': alreadyAbsent,
		'dead-letter': deadLetter - redriven,
		requeued,
	};
	// Every outcome but the re-queued adds up to the pairs taken from the import (plus what redrives brought back, which
	// their dead letters already counted): what is left was never taken.
	const pairs = record?.pairs;
	const pending = pairs === undefined ? undefined : pairs - Object.values(outcomes).reduce((sum, count) => sum + count, 0);
	const left = (pending ?? 0) + requeued;
	// Over the last minute, or since the import started when that is more recent; a finished import's over its run
	// (from its start to its last settlement: a message settles all at once, so settlements alone would not say).
	const done = record !== undefined && record.state !== 'enqueuing' && left === 0;
	const startedAt = record?.startedAt ?? firstSettledAt;
	const sinceStart = startedAt === undefined ? 0 : (now.getTime() - startedAt.getTime()) / 1000;
	const runSeconds = startedAt === undefined || lastSettledAt === undefined ? 0 : (lastSettledAt.getTime() - startedAt.getTime()) / 1000;
	const settledInAll = Object.values(outcomes).reduce((sum, count) => sum + count, 0) - requeued;
	const ratePerSecond = done ? settledInAll / Math.max(1, runSeconds) : settledLastMinute / Math.max(1, Math.min(60, sinceStart));
	return {
		correlationId,
		import: record,
		pairs,
		outcomes,
		deadLetters,
		redriven,
		pending,
		done,
		ratePerSecond,
		etaSeconds: left > 0 && ratePerSecond > 0 ? Math.ceil(left / ratePerSecond) : undefined,
		changed: {linked: changedLinks.size, removed: changedRemovals.size},
		withoutPreImage,
		messages: settlements.length,
		firstSettledAt,
		lastSettledAt,
	};
}

/** An import's changes, each once, in a stable order: what `changes` prints and `undo` inverts. */
export function importChanges(settlements: readonly Settlement[]): {linked: Pair[]; removed: Pair[]} {
	const collect = (lists: (settlement: Settlement) => Pair[][]) => {
		const byKey = new Map<string, Pair>();
		for (const settlement of settlements) {
			for (const list of lists(settlement)) {
				for (const pair of list) {
					byKey.set(pairKey(pair), pair);
				}
			}
		}

		return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, pair]) => pair);
	};

	return {
		linked: collect(settlement => [settlement.linkedPairs, settlement.foundLinked]),
		removed: collect(settlement => [settlement.removedPairs, settlement.foundAbsent]),
	};
}
