// Where a dead-lettered message's raw text goes when its record, with the text inline, would not fit a queue message:
// a blob in the app's own storage account, named in the record, so that nothing is ever cut and redrive can replay it.

import {createHash} from 'node:crypto';
import type {ContainerClient} from '@azure/storage-blob';

export interface RawMessageStore {
	/** Stores `text`; resolves with the `container/name` the record names. */
	save(text: string, sourceMessageId: string | undefined): Promise<string>;
	read(reference: string): Promise<string>;
	remove(reference: string): Promise<void>;
}

export class BlobRawMessageStore implements RawMessageStore {
	readonly #container: ContainerClient;
	#ready: Promise<unknown> | undefined;

	constructor(container: ContainerClient) {
		this.#container = container;
	}

	async save(text: string, sourceMessageId: string | undefined): Promise<string> {
		this.#ready ??= this.#container.createIfNotExists().catch((error: unknown) => {
			this.#ready = undefined;
			throw error;
		});
		await this.#ready;
		// Named by content: a message delivered twice is stored once.
		const digest = createHash('sha256').update(text).digest('hex').slice(0, 32);
		const name = `${(sourceMessageId ?? 'message').replace(/[^\w-]/g, '').slice(0, 64) || 'message'}-${digest}.txt`;
		const bytes = Buffer.from(text, 'utf8');
		await this.#container.getBlockBlobClient(name).upload(bytes, bytes.length, {blobHTTPHeaders: {blobContentType: 'text/plain; charset=utf-8'}});
		return `${this.#container.containerName}/${name}`;
	}

	async read(reference: string): Promise<string> {
		return (await this.#container.getBlockBlobClient(this.#nameOf(reference)).downloadToBuffer()).toString('utf8');
	}

	async remove(reference: string): Promise<void> {
		await this.#container.getBlockBlobClient(this.#nameOf(reference)).deleteIfExists();
	}

	#nameOf(reference: string): string {
		const prefix = `${this.#container.containerName}/`;
		if (!reference.startsWith(prefix) || reference.slice(prefix.length).includes('/')) {
			throw new Error(`'${reference.slice(0, 100)}' is not a blob of the container '${this.#container.containerName}'`);
		}

		return reference.slice(prefix.length);
	}
}
