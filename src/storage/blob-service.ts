// Blob storage from the app's one storage connection (`AzureWebJobsStorage`): the manifest and the shared throttle
// state live there, beside the queues, so a deployment needs no other service.

import {storageCredential} from './storage-credential.js';
import {BlobServiceClient, type StorageRetryOptions} from '@azure/storage-blob';
import type {StorageConnection} from '../config/settings.js';

/** Blob calls retry 3 times, 0.8 s doubling, like the queues'. */
const retryOptions: StorageRetryOptions = {maxTries: 4, retryDelayInMs: 800, maxRetryDelayInMs: 10_000, tryTimeoutInMs: 30_000};

/**
 * The shared throttle state is read again every second while busy: a retry would only bring back a stale record
 * later, and 5.6 s of retries before the "cannot be reached" warning would outlast a short run. One try, 5 s at most.
 */
export const throttleStateRetryOptions: StorageRetryOptions = {maxTries: 1, tryTimeoutInMs: 5000};

/**
 * A connection string's blob endpoint, or `AzureWebJobsStorage__blobServiceUri` with the app's identity. Throws when the
 * connection names no blob endpoint.
 */
export function createBlobServiceClient(storage: StorageConnection, retry: StorageRetryOptions = retryOptions): BlobServiceClient {
	if (storage.kind === 'connection-string') {
		// A connection string with explicit endpoints (Azurite's) but no blob one would otherwise be sent to the public
		// default host of its account name.
		if (/(?:^|;)\s*QueueEndpoint=/i.test(storage.connectionString) && !/(?:^|;)\s*BlobEndpoint=/i.test(storage.connectionString)) {
			throw new Error('AzureWebJobsStorage names a QueueEndpoint but no BlobEndpoint');
		}

		return BlobServiceClient.fromConnectionString(storage.connectionString, {retryOptions: retry});
	}

	if (!storage.blobServiceUri) {
		throw new Error('AzureWebJobsStorage__blobServiceUri is not set');
	}

	return new BlobServiceClient(storage.blobServiceUri, storageCredential(storage), {retryOptions: retry});
}
