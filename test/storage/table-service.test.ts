// The ledger's table client from the app's one storage connection: a connection string's table endpoint, or the
// identity-based `__tableServiceUri`; a connection that names no table endpoint is refused, naming what is missing.

import {describe, expect, it} from 'vitest';
import {azuriteConnectionString} from '../../src/local/azurite.js';
import {createTableClient} from '../../src/storage/table-service.js';

describe('createTableClient', () => {
	it("takes a connection string's table endpoint", () => {
		const client = createTableClient({kind: 'connection-string', connectionString: azuriteConnectionString(10_001, 10_000, 10_002)}, 'sodsyncledger');
		expect(client.url).toBe('http://127.0.0.1:10002/devstoreaccount1');
		expect(client.tableName).toBe('sodsyncledger');
	});

	it('refuses a connection string that names a queue endpoint but no table endpoint (it would go to the public host)', () => {
		expect(() => createTableClient({kind: 'connection-string', connectionString: azuriteConnectionString(10_001, 10_000)}, 'sodsyncledger')).toThrow(
			'AzureWebJobsStorage names a QueueEndpoint but no TableEndpoint',
		);
	});

	it('takes __tableServiceUri for an identity-based connection, and names it when it is missing', () => {
		const identity = {kind: 'identity' as const, queueServiceUri: 'https://acct.queue.core.windows.net', blobServiceUri: undefined, managedIdentityClientId: 'client-id'};
		expect(createTableClient({...identity, tableServiceUri: 'https://acct.table.core.windows.net'}, 'sodsyncledger').url).toBe('https://acct.table.core.windows.net');
		expect(() => createTableClient({...identity, tableServiceUri: undefined}, 'sodsyncledger')).toThrow('AzureWebJobsStorage__tableServiceUri is not set');
	});
});
