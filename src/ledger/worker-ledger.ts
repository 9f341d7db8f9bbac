// The worker's side of the import ledger: the pre-images a message's pairs are accounted against, and the one row per
// settled message. Nothing here may hold up or lose a pair: every call resolves, the ledger unreachable or not. A
// settlement that cannot be written is kept (up to a bound) and written with the next one that can; a pre-image that
// cannot be read leaves its pairs counted as Graph answered. Each kind of trouble is one warning, not one per message.

import pLimit from 'p-limit';
import type {CallResult} from '../graph/link-gateway.js';
import {pairKind, type Pair, type PairKind} from '../pair/pair.js';
import {printable} from '../text/untrusted-text.js';
import {preImageKey, type PreImage, type Settlement} from './ledger.js';
import {maximumPreImageIds, type LedgerStore} from './ledger-store.js';

/** Reads a package's incompatible packages or groups from Graph (every page), through the engine's bound and gate. */
export type LinkReader = (accessPackageId: string, kind: PairKind) => Promise<CallResult<string[]>>;

export interface WorkerLedgerOptions {
	warn?: (message: string) => void;
	now?: () => number;
	/** Pre-images kept in memory (they never change once stored). Defaults to 20,000. */
	cacheSize?: number;
	/** Settlements kept while the ledger cannot be written. Defaults to 10,000 (about 10 MB at most). */
	backlogSize?: number;
}

/** Pre-images loaded at once per message (the Graph reads among them are bounded by the engine besides). */
const loadConcurrency = 32;
/** After the store fails, pre-images are not asked of it for this long (each message would wait out its retries). */
const unreachablePauseMs = 30_000;

export class WorkerLedger {
	readonly #store: LedgerStore;
	readonly #warn: (message: string) => void;
	readonly #now: () => number;
	readonly #cacheSize: number;
	readonly #backlogSize: number;
	readonly #cache = new Map<string, ReadonlySet<string>>();
	readonly #loading = new Map<string, Promise<PreImage>>();
	/** Per import, the stored pre-images read in one query where this process first meets the import. */
	readonly #stored = new Map<string, Promise<void>>();
	readonly #backlog: Settlement[] = [];
	#draining: Promise<void> | undefined;
	#unreachableUntil = 0;
	#warnedUnreachable = false;
	#lost = 0;

	constructor(store: LedgerStore, options: WorkerLedgerOptions = {}) {
		this.#store = store;
		this.#warn = options.warn ?? (message => console.warn(message));
		this.#now = options.now ?? Date.now;
		this.#cacheSize = options.cacheSize ?? 20_000;
		this.#backlogSize = options.backlogSize ?? 10_000;
	}

	/** Settlements waiting for the ledger to be reachable again. */
	get backlog(): number {
		return this.#backlog.length;
	}

	/**
	 * The pre-image of every link list `pairs` write to (a package's incompatible packages or groups: `preImageKey`), for
	 * this import, each a promise of its own (a pair's writes wait for its list's only): kept in memory (every one stored so far is read in one query where this process first
	 * meets the import), else read from Graph now and stored, the first instance's read winning. A package Graph does
	 * not know has no links. Undefined for a package whose links could not be read or stored. A promise rejects only
	 * when the read does (Graph refused the credential), which fails the invocation.
	 */
	preImages(correlationId: string, pairs: readonly Pair[], read: LinkReader): Map<string, Promise<PreImage>> {
		const stored = this.#loadStored(correlationId);
		const limit = pLimit(loadConcurrency);
		const images = new Map<string, Promise<PreImage>>();
		for (const pair of pairs) {
			const key = preImageKey(pair);
			if (!images.has(key)) {
				const kind = pairKind(pair);
				const image = stored.then(async () => limit(async () => this.#preImage(correlationId, key, async () => read(pair.accessPackageId, kind))));
				image.catch(() => undefined); // Handled by whoever awaits it; never an unhandled rejection.
				images.set(key, image);
			}
		}

		return images;
	}

	/** Records a settled message; never rejects. While the ledger is unreachable the record waits, without a try. */
	async settle(settlement: Settlement): Promise<void> {
		this.#backlog.push(settlement);
		if (this.#now() < this.#unreachableUntil) {
			this.#bound();
			return;
		}

		await this.#drain();
	}

	/** Writes what is waiting; resolves with the number still not written. */
	async flush(): Promise<number> {
		await this.#drain();
		return this.#backlog.length;
	}

	async #drain(): Promise<void> {
		// One writer at a time: a second caller waits for the first, then writes what is left.
		while (this.#draining) {
			// eslint-disable-next-line no-await-in-loop
			await this.#draining;
		}

		this.#draining = this.#writeBacklog();
		try {
			await this.#draining;
		} finally {
			this.#draining = undefined;
		}
	}

	async #writeBacklog(): Promise<void> {
		while (this.#backlog.length > 0) {
			const next = this.#backlog[0]!;
			try {
				// eslint-disable-next-line no-await-in-loop
				await this.#store.settle(next);
			} catch (error) {
				this.#unreachable(error);
				this.#bound();
				return;
			}

			this.#backlog.shift();
			if (this.#warnedUnreachable && this.#backlog.length === 0) {
				this.#warnedUnreachable = false;
				this.#warn('sod-sync ledger: reachable again; every settlement kept meanwhile is recorded.');
			}
		}
	}

	/** Keeps the backlog within its bound: the oldest records go, with a warning naming how many pairs they held. */
	#bound(): void {
		if (this.#backlog.length <= this.#backlogSize) {
			return;
		}

		const dropped = this.#backlog.splice(0, this.#backlog.length - this.#backlogSize);
		this.#lost += dropped.length;
		this.#warn(
			`sod-sync ledger: ${dropped.length} settled messages (${dropped.reduce((sum, s) => sum + s.pairs, 0)} pairs) could not be recorded and were dropped from memory (${this.#lost} so far); their imports' status will show those pairs as pending. The pairs themselves were applied or dead-lettered as usual.`,
		);
	}

	async #preImage(correlationId: string, listKey: string, read: () => ReturnType<LinkReader>): Promise<PreImage> {
		const key = `${correlationId}\n${listKey}`;
		const cached = this.#cache.get(key);
		if (cached) {
			return cached;
		}

		let loading = this.#loading.get(key);
		if (!loading) {
			loading = this.#loadPreImage(correlationId, listKey, read).finally(() => this.#loading.delete(key));
			this.#loading.set(key, loading);
		}

		const image = await loading;
		if (image) {
			this.#remember(key, image);
		}

		return image;
	}

	async #loadStored(correlationId: string): Promise<void> {
		let loading = this.#stored.get(correlationId);
		if (!loading) {
			if (this.#now() < this.#unreachableUntil) {
				return; // Not remembered: tried again once the pause is over.
			}

			loading = (async () => {
				try {
					for (const [listKey, ids] of await this.#store.readPreImages(correlationId)) {
						this.#remember(`${correlationId}\n${listKey}`, new Set(ids));
					}
				} catch (error) {
					this.#stored.delete(correlationId);
					this.#unreachable(error);
				}
			})();
			this.#stored.set(correlationId, loading);
		}

		await loading;
	}

	#remember(key: string, image: ReadonlySet<string>): void {
		if (this.#cache.size >= this.#cacheSize) {
			this.#cache.delete(this.#cache.keys().next().value!);
		}

		this.#cache.set(key, image);
	}

	/** Not stored when this process looked: read from Graph, then stored unless another instance stored it first. */
	async #loadPreImage(correlationId: string, listKey: string, read: () => ReturnType<LinkReader>): Promise<PreImage> {
		if (this.#now() < this.#unreachableUntil) {
			return undefined;
		}

		const links = await read();
		let ids: string[];
		if (links.kind === 'ok') {
			ids = links.value;
		} else if (links.failure.kind === 'not-found') {
			ids = []; // A package Graph does not know has no links; its pairs are dead-lettered not-found.
		} else {
			return undefined;
		}

		if (ids.length > maximumPreImageIds) {
			return undefined;
		}

		try {
			return new Set(await this.#store.createPreImage(correlationId, listKey, ids));
		} catch (error) {
			this.#unreachable(error);
			return undefined;
		}
	}

	#unreachable(error: unknown): void {
		this.#unreachableUntil = this.#now() + unreachablePauseMs;
		if (!this.#warnedUnreachable) {
			this.#warnedUnreachable = true;
			this.#warn(
				`sod-sync ledger: the import ledger cannot be written (${printable(String((error as Error)?.message ?? error), 300)}); pairs are still applied and dead-lettered as usual, settlements are kept in memory and recorded when it is back, and \`sod-sync status\` shows the rest as pending.`,
			);
		}
	}
}
