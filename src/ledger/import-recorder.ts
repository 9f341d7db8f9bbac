// What `enqueue` and `undo` write to the ledger about an import: its row when sending starts, and again when it ends.
// The ledger never stops an import: if it cannot be written, one warning, and the pairs are sent as usual.

import type {Settings} from '../config/settings.js';
import type {LinkAction, Pair} from '../pair/pair.js';
import {printable} from '../text/untrusted-text.js';
import type {ImportRecord} from './ledger.js';
import type {LedgerStore} from './ledger-store.js';
import {openLedgerStore, retentionCutoff} from './open-ledger.js';

export class ImportRecorder {
	readonly #store: LedgerStore | undefined;
	readonly #warn: (message: string) => void;
	#record: ImportRecord | undefined;
	#previousPairs = 0;
	#previousDuplicates = 0;
	#previousInvalid = 0;

	private constructor(store: LedgerStore | undefined, warn: (message: string) => void) {
		this.#store = store;
		this.#warn = warn;
	}

	/**
	 * Records the import as started. An import sent again under the same correlation id (a re-run after an interruption)
	 * adds to what it had: the ledger counts every pair sent, and the second sending of a link finds it already made.
	 */
	static async start(
		settings: Settings,
		start: Pick<ImportRecord, 'correlationId' | 'source' | 'undoOf'> & {invalidRows: number},
		warn: (message: string) => void,
		now = new Date(),
	): Promise<ImportRecorder> {
		const store = openLedgerStore(settings, warn);
		const recorder = new ImportRecorder(store, warn);
		if (!store) {
			return recorder;
		}

		try {
			const previous = await store.readImport(start.correlationId);
			recorder.#previousPairs = previous?.pairs ?? 0;
			recorder.#previousDuplicates = previous?.duplicateRows ?? 0;
			recorder.#previousInvalid = previous?.invalidRows ?? 0;
			recorder.#record = {
				correlationId: start.correlationId,
				source: start.source,
				pairs: recorder.#previousPairs,
				invalidRows: recorder.#previousInvalid + start.invalidRows,
				duplicateRows: recorder.#previousDuplicates,
				startedAt: previous?.startedAt ?? now,
				state: 'enqueuing',
				...(start.undoOf === undefined ? {} : {undoOf: start.undoOf}),
			};
			await store.recordImport(recorder.#record);
			const pruned = await store.pruneIfDue(retentionCutoff(settings, now), now);
			if (pruned > 0) {
				warn(`sod-sync ledger: pruned ${pruned} rows older than ${settings.ledgerRetentionDays} days`);
			}
		} catch (error) {
			recorder.#failed(error);
		}

		return recorder;
	}

	/** Records what was sent: `sentPairs` pairs (as the worker counts them), and whether sending stopped part-way. */
	async finish(sent: {sentPairs: number; duplicates: number; interrupted: boolean}): Promise<void> {
		if (!this.#store || !this.#record) {
			return;
		}

		this.#record = {
			...this.#record,
			pairs: this.#previousPairs + sent.sentPairs,
			duplicateRows: this.#previousDuplicates + sent.duplicates,
			state: sent.interrupted ? 'interrupted' : 'enqueued',
		};
		try {
			await this.#store.recordImport(this.#record);
		} catch (error) {
			this.#failed(error);
		}
	}

	#failed(error: unknown): void {
		this.#record = undefined;
		this.#warn(
			`sod-sync ledger: the import could not be recorded (${printable(String((error as Error)?.message ?? error), 300)}); its pairs are sent as usual, but \`sod-sync status\` will not know how many to expect.`,
		);
	}
}

/**
 * An enqueue that records its import in the ledger when it first sends (reconcile --apply, the scheduled reconcile):
 * what they enqueue is then an import `sod-sync status` can follow like any other.
 */
export class RecordedEnqueue {
	readonly #start: () => Promise<ImportRecorder>;
	readonly #send: (pairs: readonly Pair[], action: LinkAction) => Promise<number>;
	#recorder: Promise<ImportRecorder> | undefined;
	#sentPairs = 0;

	constructor(start: () => Promise<ImportRecorder>, send: (pairs: readonly Pair[], action: LinkAction) => Promise<number>) {
		this.#start = start;
		this.#send = send;
	}

	/** Sends `pairs` (the import is recorded before the first send); resolves with the messages sent. */
	readonly enqueue = async (pairs: readonly Pair[], action: LinkAction): Promise<number> => {
		this.#recorder ??= this.#start();
		await this.#recorder;
		const messages = await this.#send(pairs, action);
		this.#sentPairs += pairs.length;
		return messages;
	};

	/** Records what was sent, if anything was. */
	async finish(interrupted: boolean): Promise<void> {
		await (await this.#recorder)?.finish({sentPairs: this.#sentPairs, duplicates: 0, interrupted});
	}
}
