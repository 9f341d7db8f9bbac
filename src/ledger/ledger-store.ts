// The import ledger in Azure Table storage (the `sodsyncledger` table of the app's storage account).
//
// One partition per import (its correlation id, escaped), holding a row per settled message (`s|<message id>`) and a
// row per link list the import wrote to (`p|<package id>` for its incompatible packages, `p|<package id>|groups` for its
// incompatible groups: the list before the import, the pre-image); the import rows
// themselves sit in the `imports` partition, so that the recent imports are one partition's read. No row is written
// twice by different instances: a message's row is created once (a redelivered message finds it and is not counted
// again), a pre-image once (the first reader wins; the others read its row). Pair lists are binary, 32 bytes a pair, in
// a column per kind (`linkedPairs` for package rules, `linkedPairsGroups` for group rules), so a message's lists (at most
// 1,000 pairs, 32 KB) always fit its row: no blob is needed.

import {odata, RestError, TableClient, type TableEntity, type TableEntityResult} from '@azure/data-tables';
import type {DeadLetterReason} from '../engine/retry-decision.js';
import {makePair, pairTarget, type Pair, type PairKind} from '../pair/pair.js';
import {messageOrigins, type ImportRecord, type MessageOrigin, type Settlement} from './ledger.js';

export const ledgerTableName = 'sodsyncledger';

/** What the worker and the commands need of the ledger's storage: a table (Azure, Azurite); the worker's unit tests use one that fails on demand. */
export interface LedgerStore {
	/** Creates or replaces an import's row. */
	recordImport(record: ImportRecord): Promise<void>;
	readImport(correlationId: string): Promise<ImportRecord | undefined>;
	/** Every import still kept, newest first. */
	listImports(): Promise<ImportRecord[]>;
	/** `already-recorded` when this message was settled before (a redelivery): it is not counted again. */
	settle(settlement: Settlement): Promise<'recorded' | 'already-recorded'>;
	readSettlements(correlationId: string): Promise<Settlement[]>;
	/** Every pre-image stored for the import so far, by link list (`preImageKey`): one query, where a process starts on an import. */
	readPreImages(correlationId: string): Promise<Map<string, string[]>>;
	/** Stores a link list's pre-image unless one is there already; returns the one stored (this or the earlier). */
	createPreImage(correlationId: string, listKey: string, incompatibleIds: readonly string[]): Promise<string[]>;
	/** Deletes what was last written before `cutoff` when the last prune was a day or more ago; the rows deleted. */
	pruneIfDue(cutoff: Date, now: Date): Promise<number>;
}

const importsPartition = 'imports';
const metaPartition = 'meta';
/**
 * A property holds at most 64 KiB, which Azurite measures on the base64 text as UTF-16 (Azure on the bytes): 24,000
 * bytes fit either way. A longer list is split over `<name>`, `<name>1`, `<name>2`, ...
 */
const chunkBytes = 24_000;
/**
 * A row holds at most 1 MiB (measured the same way): a pre-image above this many ids (320 KB) is not stored, and its
 * pairs are counted without one. No package has that many incompatible packages in any tenant we know of.
 */
export const maximumPreImageIds = 20_000;

export class TableLedgerStore implements LedgerStore {
	readonly #table: TableClient;
	#ready: Promise<void> | undefined;

	constructor(table: TableClient) {
		this.#table = table;
	}

	async recordImport(record: ImportRecord): Promise<void> {
		await this.#ensureTable();
		await this.#table.upsertEntity(
			{
				partitionKey: importsPartition,
				rowKey: escapeKey(record.correlationId),
				correlationId: record.correlationId,
				source: record.source,
				pairs: record.pairs,
				invalidRows: record.invalidRows,
				duplicateRows: record.duplicateRows,
				startedAt: record.startedAt,
				state: record.state,
				...(record.undoOf === undefined ? {} : {undoOf: record.undoOf}),
			},
			'Replace',
		);
	}

	async readImport(correlationId: string): Promise<ImportRecord | undefined> {
		await this.#ensureTable();
		const entity = await this.#read(importsPartition, escapeKey(correlationId));
		return entity === undefined ? undefined : importFrom(entity);
	}

	async listImports(): Promise<ImportRecord[]> {
		await this.#ensureTable();
		const records: ImportRecord[] = [];
		for await (const entity of this.#table.listEntities<Record<string, unknown>>({queryOptions: {filter: odata`PartitionKey eq ${importsPartition}`}})) {
			records.push(importFrom(entity));
		}

		return records.sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime());
	}

	async settle(settlement: Settlement): Promise<'recorded' | 'already-recorded'> {
		await this.#ensureTable();
		const entity: TableEntity = {
			partitionKey: escapeKey(settlement.correlationId),
			rowKey: `s|${escapeKey(settlement.messageId)}`,
			origin: settlement.origin,
			pairs: settlement.pairs,
			linked: settlement.linked,
			alreadyLinked: settlement.alreadyLinked,
			removed: settlement.removed,
			alreadyAbsent: settlement.alreadyAbsent,
			deadLetter: settlement.deadLetter,
			deadLetters: JSON.stringify(settlement.deadLetters),
			requeued: settlement.requeued,
			withoutPreImage: settlement.withoutPreImage,
			settledAt: settlement.settledAt,
			...pairColumns('linkedPairs', settlement.linkedPairs),
			...pairColumns('removedPairs', settlement.removedPairs),
			...pairColumns('foundLinked', settlement.foundLinked),
			...pairColumns('foundAbsent', settlement.foundAbsent),
		};
		try {
			await this.#table.createEntity(entity);
			return 'recorded';
		} catch (error) {
			if (isStatus(error, 409)) {
				return 'already-recorded';
			}

			throw error;
		}
	}

	async readSettlements(correlationId: string): Promise<Settlement[]> {
		await this.#ensureTable();
		const settlements: Settlement[] = [];
		const partition = escapeKey(correlationId);
		const filter = odata`PartitionKey eq ${partition} and RowKey ge ${'s|'} and RowKey lt ${'s}'}`;
		for await (const entity of this.#table.listEntities<Record<string, unknown>>({queryOptions: {filter}})) {
			settlements.push(settlementFrom(correlationId, entity));
		}

		return settlements;
	}

	/** One link list's stored pre-image (the worker reads them all at once: `readPreImages`). */
	async readPreImage(correlationId: string, listKey: string): Promise<string[] | undefined> {
		await this.#ensureTable();
		const entity = await this.#read(escapeKey(correlationId), `p|${listKey}`);
		return entity === undefined ? undefined : decodeIds(unchunked(entity, 'ids'));
	}

	async readPreImages(correlationId: string): Promise<Map<string, string[]>> {
		await this.#ensureTable();
		const images = new Map<string, string[]>();
		const partition = escapeKey(correlationId);
		const filter = odata`PartitionKey eq ${partition} and RowKey ge ${'p|'} and RowKey lt ${'p}'}`;
		for await (const entity of this.#table.listEntities<Record<string, unknown>>({queryOptions: {filter}})) {
			images.set(String(entity.rowKey).slice(2), decodeIds(unchunked(entity, 'ids')));
		}

		return images;
	}

	async createPreImage(correlationId: string, listKey: string, incompatibleIds: readonly string[]): Promise<string[]> {
		await this.#ensureTable();
		try {
			await this.#table.createEntity({
				partitionKey: escapeKey(correlationId),
				rowKey: `p|${listKey}`,
				count: incompatibleIds.length,
				...chunked('ids', encodeIds(incompatibleIds)),
			});
			return [...incompatibleIds];
		} catch (error) {
			if (!isStatus(error, 409)) {
				throw error;
			}

			const stored = await this.readPreImage(correlationId, listKey);
			if (stored === undefined) {
				throw new Error(`the pre-image of ${listKey} was there a moment ago and is gone`);
			}

			return stored;
		}
	}

	async pruneIfDue(cutoff: Date, now: Date): Promise<number> {
		await this.#ensureTable();
		const marker = await this.#read(metaPartition, 'prune');
		const last = marker?.prunedAt instanceof Date ? marker.prunedAt : typeof marker?.prunedAt === 'string' ? new Date(marker.prunedAt) : undefined;
		if (last !== undefined && now.getTime() - last.getTime() < 86_400_000) {
			return 0;
		}

		await this.#table.upsertEntity({partitionKey: metaPartition, rowKey: 'prune', prunedAt: now}, 'Replace');
		// Timestamp is the service's own time of each row's last write: a kept import whose rows age out loses them.
		const byPartition = new Map<string, string[]>();
		const filter = odata`Timestamp lt ${cutoff} and PartitionKey ne ${metaPartition}`;
		for await (const entity of this.#table.listEntities({queryOptions: {filter, select: ['PartitionKey', 'RowKey']}})) {
			const rows = byPartition.get(entity.partitionKey!) ?? [];
			rows.push(entity.rowKey!);
			byPartition.set(entity.partitionKey!, rows);
		}

		let deleted = 0;
		for (const [partition, rows] of byPartition) {
			for (let start = 0; start < rows.length; start += 100) {
				const batch = rows.slice(start, start + 100);
				// eslint-disable-next-line no-await-in-loop
				await this.#table.submitTransaction(batch.map(rowKey => ['delete', {partitionKey: partition, rowKey}]));
				deleted += batch.length;
			}
		}

		return deleted;
	}

	async #read(partitionKey: string, rowKey: string): Promise<TableEntityResult<Record<string, unknown>> | undefined> {
		try {
			return await this.#table.getEntity<Record<string, unknown>>(partitionKey, rowKey);
		} catch (error) {
			if (isStatus(error, 404)) {
				return undefined;
			}

			throw error;
		}
	}

	async #ensureTable(): Promise<void> {
		this.#ready ??= this.#table.createTable().catch((error: unknown) => {
			this.#ready = undefined;
			throw error;
		});
		await this.#ready;
	}
}

/**
 * A correlation id as a table key: the characters keys may not hold (`/ \ # ?`, control characters) and `%` itself are
 * percent-escaped, so distinct ids stay distinct.
 */
export function escapeKey(value: string): string {
	// eslint-disable-next-line no-control-regex
	return value.replaceAll(/[%/\\#?\u0000-\u001F\u007F-\u009F]/g, character => `%${character.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
}

function isStatus(error: unknown, status: number): boolean {
	return error instanceof RestError ? error.statusCode === status : (error as {statusCode?: number})?.statusCode === status;
}

/** A list of GUIDs as 16 bytes each. */
export function encodeIds(ids: readonly string[]): Uint8Array {
	const bytes = new Uint8Array(ids.length * 16);
	ids.forEach((id, index) => {
		bytes.set(Buffer.from(id.replaceAll('-', ''), 'hex'), index * 16);
	});
	return bytes;
}

export function decodeIds(bytes: Uint8Array): string[] {
	const ids: string[] = [];
	for (let offset = 0; offset + 16 <= bytes.length; offset += 16) {
		const hex = Buffer.from(bytes.subarray(offset, offset + 16)).toString('hex');
		ids.push(`${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`);
	}

	return ids;
}

/** Pairs of one kind as bytes: each pair's two ids (the kind is the column's: see `pairColumns`). */
export function encodePairs(pairs: readonly Pair[]): Uint8Array {
	return encodeIds(pairs.flatMap(pair => [pair.accessPackageId, pairTarget(pair)]));
}

export function decodePairs(bytes: Uint8Array, kind: PairKind = 'package'): Pair[] {
	const ids = decodeIds(bytes);
	const pairs: Pair[] = [];
	for (let index = 0; index + 1 < ids.length; index += 2) {
		pairs.push(makePair(kind, ids[index]!, ids[index + 1]!));
	}

	return pairs;
}

/** A settlement's pair list as columns: package rules under `name` (as before groups), group rules under `nameGroups`. */
function pairColumns(name: string, pairs: readonly Pair[]): Record<string, Uint8Array> {
	return {
		...chunked(name, encodePairs(pairs.filter(pair => pair.incompatibleGroupId === undefined))),
		...chunked(`${name}Groups`, encodePairs(pairs.filter(pair => pair.incompatibleGroupId !== undefined))),
	};
}

function pairsIn(entity: Record<string, unknown>, name: string): Pair[] {
	return [...decodePairs(unchunked(entity, name)), ...decodePairs(unchunked(entity, `${name}Groups`), 'group')];
}

function chunked(name: string, bytes: Uint8Array): Record<string, Uint8Array> {
	const properties: Record<string, Uint8Array> = {};
	for (let start = 0, index = 0; start < bytes.length; start += chunkBytes, index++) {
		// A copy, not a view: the SDK serialises a view's whole underlying buffer.
		properties[index === 0 ? name : `${name}${index}`] = bytes.slice(start, start + chunkBytes);
	}

	return properties;
}

function unchunked(entity: Record<string, unknown>, name: string): Uint8Array {
	const parts: Uint8Array[] = [];
	for (let index = 0; ; index++) {
		const part = entity[index === 0 ? name : `${name}${index}`];
		if (!(part instanceof Uint8Array)) {
			break;
		}

		parts.push(part);
	}

	return Buffer.concat(parts);
}

function importFrom(entity: Record<string, unknown>): ImportRecord {
	const state = entity.state === 'enqueued' || entity.state === 'interrupted' ? entity.state : 'enqueuing';
	return {
		correlationId: String(entity.correlationId),
		source: String(entity.source ?? ''),
		pairs: Number(entity.pairs ?? 0),
		invalidRows: Number(entity.invalidRows ?? 0),
		duplicateRows: Number(entity.duplicateRows ?? 0),
		startedAt: dateOf(entity.startedAt),
		state,
		...(typeof entity.undoOf === 'string' ? {undoOf: entity.undoOf} : {}),
	};
}

function settlementFrom(correlationId: string, entity: Record<string, unknown>): Settlement {
	const origin = messageOrigins.includes(entity.origin as MessageOrigin) ? (entity.origin as MessageOrigin) : 'import';
	let deadLetters: Partial<Record<DeadLetterReason, number>> = {};
	try {
		deadLetters = JSON.parse(String(entity.deadLetters ?? '{}')) as Partial<Record<DeadLetterReason, number>>;
	} catch {
		deadLetters = {};
	}

	return {
		correlationId,
		messageId: String(entity.rowKey).slice(2),
		origin,
		pairs: Number(entity.pairs ?? 0),
		linked: Number(entity.linked ?? 0),
		alreadyLinked: Number(entity.alreadyLinked ?? 0),
		removed: Number(entity.removed ?? 0),
		alreadyAbsent: Number(entity.alreadyAbsent ?? 0),
		deadLetter: Number(entity.deadLetter ?? 0),
		deadLetters,
		requeued: Number(entity.requeued ?? 0),
		linkedPairs: pairsIn(entity, 'linkedPairs'),
		removedPairs: pairsIn(entity, 'removedPairs'),
		foundLinked: pairsIn(entity, 'foundLinked'),
		foundAbsent: pairsIn(entity, 'foundAbsent'),
		withoutPreImage: Number(entity.withoutPreImage ?? 0),
		settledAt: dateOf(entity.settledAt),
	};
}

function dateOf(value: unknown): Date {
	return value instanceof Date ? value : new Date(String(value));
}
