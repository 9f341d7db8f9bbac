// Table storage from the app's one storage connection (`AzureWebJobsStorage`): the import ledger lives there, beside
// the queues and blobs, so a deployment needs no other service.

import {TableClient, type TableServiceClientOptions} from '@azure/data-tables';
import type {StorageConnection} from '../config/settings.js';
import {storageCredential} from './storage-credential.js';

/**
 * Two quick retries: the ledger is written beside the work, never in its way. A write that still fails is kept and
 * tried again with the next one (see WorkerLedger), so a long retry here would only hold up a message.
 */
const retryOptions: NonNullable<TableServiceClientOptions['retryOptions']> = {maxRetries: 2, retryDelayInMs: 200, maxRetryDelayInMs: 2000};

/**
 * A connection string's table endpoint, or `AzureWebJobsStorage__tableServiceUri` with the app's identity. Throws when
 * the connection names no table endpoint (Azurite's connection strings name each service they have).
 */
export function createTableClient(storage: StorageConnection, tableName: string): TableClient {
	const options: TableServiceClientOptions = {retryOptions};
	if (storage.kind === 'connection-string') {
		if (/(?:^|;)\s*QueueEndpoint=/i.test(storage.connectionString) && !/(?:^|;)\s*TableEndpoint=/i.test(storage.connectionString)) {
			throw new Error('AzureWebJobsStorage names a QueueEndpoint but no TableEndpoint');
		}

		const loopback = /(?:^|;)\s*TableEndpoint=http:\/\/(?:127\.0\.0\.1|localhost)[:/]/i.test(storage.connectionString);
		return TableClient.fromConnectionString(storage.connectionString, tableName, {...options, allowInsecureConnection: loopback});
	}

	if (!storage.tableServiceUri) {
		throw new Error('AzureWebJobsStorage__tableServiceUri is not set');
	}

	return new TableClient(storage.tableServiceUri, tableName, storageCredential(storage), options);
}
