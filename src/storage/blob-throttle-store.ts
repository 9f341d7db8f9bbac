// The shared throttle state in a blob: one small JSON record per pairs queue, read by every working instance about once a
// second and written with ETag conditions (a write that lost the race is merged again and retried), so instances agree
// without a lock and without a service beyond the storage account the app already has.

import type {ContainerClient} from '@azure/storage-blob';
import {
	emptyThrottleRecord,
	mergeThrottleRecord,
	parseThrottleRecord,
	recordBounds,
	serializeThrottleRecord,
	snapshotOf,
	type ThrottleNews,
	type ThrottleRecord,
	type ThrottleSnapshot,
	type ThrottleStore,
} from '../engine/shared-throttle.js';

/** A heartbeat is written at most this often when there is no news (reads happen every exchange). Defaults to 2 s. */
const heartbeatWriteMs = 2000;
/** Writers racing on one ETag retry this many times before giving up for this exchange. */
const maximumWriteTries = 4;

export class BlobThrottleStore implements ThrottleStore {
	readonly #container: ContainerClient;
	readonly #blobName: string;
	#containerReady: Promise<unknown> | undefined;

	/** `blobName` is per pairs queue: instances on different queues (different apps) do not share. */
	constructor(container: ContainerClient, blobName: string) {
		this.#container = container;
		this.#blobName = blobName;
	}

	async exchange(instanceId: string, news: ThrottleNews | undefined, now: number, leaving = false): Promise<ThrottleSnapshot> {
		const blob = this.#container.getBlockBlobClient(this.#blobName);
		for (let attempt = 1; ; attempt++) {
			// eslint-disable-next-line no-await-in-loop
			const stored = await this.#read();
			const merged = mergeThrottleRecord(stored.record, instanceId, news, now, leaving);
			const heartbeatStale = (stored.record.instances[instanceId] ?? Number.NEGATIVE_INFINITY) < now - heartbeatWriteMs;
			if (!news && !leaving && !heartbeatStale) {
				return snapshotOf(merged, now);
			}

			const text = serializeThrottleRecord(merged);
			try {
				// eslint-disable-next-line no-await-in-loop
				await blob.upload(text, Buffer.byteLength(text), {
					conditions: stored.etag ? {ifMatch: stored.etag} : {ifNoneMatch: '*'},
					blobHTTPHeaders: {blobContentType: 'application/json'},
				});
				return snapshotOf(merged, now);
			} catch (error) {
				const status = (error as {statusCode?: number}).statusCode;
				// 412: someone wrote since we read; 409: someone created it first. Merge again on their record.
				if (status !== 412 && status !== 409) {
					throw error;
				}

				if (attempt >= maximumWriteTries) {
					// Lost every race this time: the news is not stored. The caller applies the record as it would be with
					// it (its own news must not give way to an older pace) and keeps the news for its next exchange
					// (dropping it here lost a Retry-After in two rounds out of five).
					return {...snapshotOf(merged, now), written: false};
				}
			}
		}
	}

	async #read(): Promise<{record: ThrottleRecord; etag: string | undefined}> {
		this.#containerReady ??= this.#container.createIfNotExists().catch((error: unknown) => {
			this.#containerReady = undefined;
			throw error;
		});
		await this.#containerReady;
		try {
			const response = await this.#container.getBlockBlobClient(this.#blobName).download();
			const text = await streamText(response.readableStreamBody, recordBounds.maximumRecordBytes);
			return {record: parseThrottleRecord(text), etag: response.etag};
		} catch (error) {
			if ((error as {statusCode?: number}).statusCode === 404) {
				return {record: emptyThrottleRecord, etag: undefined};
			}

			throw error;
		}
	}
}

/** The stream's text, or, once it passes `maximumBytes`, the first `maximumBytes + 1` bytes of it (read no further). */
async function streamText(stream: NodeJS.ReadableStream | undefined, maximumBytes: number): Promise<string> {
	if (!stream) {
		return '';
	}

	const chunks: Buffer[] = [];
	let bytes = 0;
	for await (const chunk of stream) {
		const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
		chunks.push(buffer);
		bytes += buffer.length;
		if (bytes > maximumBytes) {
			(stream as NodeJS.ReadableStream & {destroy?: () => void}).destroy?.();
			break;
		}
	}

	return Buffer.concat(chunks).toString('utf8');
}
