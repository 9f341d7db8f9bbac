// The credential of an identity-based storage connection, shared by the queue and blob clients.

import {DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential} from '@azure/identity';
import type {StorageConnection} from '../config/settings.js';

/**
 * The credential of an identity-based connection, as the Functions host reads `AzureWebJobsStorage__*`: the managed
 * identity `__clientId` names, else `DefaultAzureCredential` (an operator's own sign-in, for the CLI).
 */
export function storageCredential(storage: Extract<StorageConnection, {kind: 'identity'}>): TokenCredential {
	return storage.managedIdentityClientId ? new ManagedIdentityCredential({clientId: storage.managedIdentityClientId}) : new DefaultAzureCredential();
}
