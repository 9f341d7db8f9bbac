// Opens the import ledger from the app's settings, for the worker and the commands alike.

import type {Settings} from '../config/settings.js';
import {settingNames} from '../config/settings.js';
import {createTableClient} from '../storage/table-service.js';
import {ledgerTableName, TableLedgerStore, type LedgerStore} from './ledger-store.js';

/**
 * The ledger's store, or undefined when it is off: `SOD_LEDGER_RETENTION_DAYS=0` (silently: that is the choice), or a
 * storage connection with no table endpoint (with one warning, naming what to set).
 */
export function openLedgerStore(settings: Settings, warn: (message: string) => void): LedgerStore | undefined {
	if (settings.ledgerRetentionDays === 0) {
		return undefined;
	}

	try {
		return new TableLedgerStore(createTableClient(settings.storage, ledgerTableName));
	} catch (error) {
		warn(
			`sod-sync ledger: off (${(error as Error).message}); imports run as usual but \`sod-sync status\` cannot follow them. Give the storage connection a table endpoint, or set ${settingNames.ledgerRetentionDays}=0 to turn the ledger off without this warning.`,
		);
		return undefined;
	}
}

/** The oldest time a ledger row may have been written to be kept. */
export function retentionCutoff(settings: Pick<Settings, 'ledgerRetentionDays'>, now: Date): Date {
	return new Date(now.getTime() - settings.ledgerRetentionDays * 86_400_000);
}
