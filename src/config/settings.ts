// Every setting sod-sync reads, one entry each in `settingTable` (name, default, parse and range, what it means): the
// names, the defaults, the readers and the README's settings tables derive from it, and nothing else defines them.
// The Function, the CLI and the tests all read settings through `readSettings` (and `readReconcileSettings`).

import {readFunctionTimeoutMs} from './host-config.js';

export type GraphApiVersion = 'v1.0' | 'beta';

export interface Settings {
	/** Storage for the pairs and dead-letter queues (connection string or identity-based, see `StorageConnection`). */
	storage: StorageConnection;
	queueName: string;
	deadLetterQueueName: string;
	graphBaseUrl: URL;
	graphApiVersion: GraphApiVersion;
	graphMaxConcurrency: number;
	graphBatchSize: number;
	graphRequestTimeoutMs: number;
	/** A static bearer token (local simulator, tests). When set, no Azure credential is used. */
	graphAccessToken: string | undefined;
	invocationBudgetMs: number;
	maxAttempts: number;
	/** A pair not applied this long after it first entered the queue is dead-lettered `expired`. */
	maxPairAgeMs: number;
	/** The blob container holding the throttle state the instances share; undefined when sharing is off. */
	throttleStateContainer: string | undefined;
	/** The blob container for raw messages too large to sit inline in their dead-letter record. */
	deadLetterContainer: string;
	/** Days an import's ledger is kept; 0 turns the ledger off. */
	ledgerRetentionDays: number;
	/** First retry wait for 5xx and connection errors; 404 retries start at ten times this. */
	retryBaseMs: number;
	notFoundRetries: number;
}

export type StorageConnection =
	| {kind: 'connection-string'; connectionString: string}
	| {
			kind: 'identity';
			queueServiceUri: string;
			blobServiceUri: string | undefined;
			tableServiceUri: string | undefined;
			managedIdentityClientId: string | undefined;
	  };

export type Environment = Record<string, string | undefined>;

/** One setting: its name, its default, how its text is read and checked, and its row in the README. */
export interface SettingEntry<Name extends string = string, T = unknown> {
	readonly name: Name;
	/** Which README table lists it: the worker's (Configuration) or the scheduled reconcile's (Compliance sync). */
	readonly group: 'worker' | 'reconcile';
	/** The value when the setting is unset or empty. */
	readonly default: T;
	/**
	 * Reads the setting's text (trimmed, not empty), throwing an Error that says what is wrong and what is allowed (the
	 * reader prefixes the name). Absent for the storage connection, which spans several variables (readStorageConnection).
	 */
	readonly parse?: (raw: string) => T;
	/** The README's "meaning" column. */
	readonly doc: string;
	/** The README's "default" column, where it is not the default written out. */
	readonly shown?: string;
}

function setting<const Name extends string, T>(entry: SettingEntry<Name, T>): SettingEntry<Name, T> {
	return entry;
}

/**
 * Every setting sod-sync reads, one entry each: `settingNames`, `defaults`, the readers below and the README's two
 * settings tables (`settingsTableMarkdown`; a test keeps the README's text equal to it) all derive from it.
 */
export const settingTable = {
	storage: setting({
		name: 'AzureWebJobsStorage',
		group: 'worker',
		default: undefined,
		doc: 'storage connection string for the queues; or use the identity-based form `AzureWebJobsStorage__queueServiceUri` (+ `__credential=managedidentity`, `__clientId` for a user-assigned identity)',
		shown: 'required',
	}),
	queueName: setting({
		name: 'SOD_QUEUE',
		group: 'worker',
		default: 'sod-pairs',
		parse: parseQueueName,
		doc: 'the pairs queue. The trigger binds `%SOD_QUEUE%`, which the host resolves from the app settings: unset, the host cannot index `syncPairs` and nothing is processed. The CLI (`enqueue`, `run`, ...) falls back to `sod-pairs`',
		shown: 'required (Function); `sod-pairs` (CLI)',
	}),
	deadLetterQueueName: setting({
		name: 'SOD_DEAD_LETTER_QUEUE',
		group: 'worker',
		default: 'sod-pairs-dead-letter',
		parse: parseQueueName,
		doc: 'where dead-letter records go',
	}),
	/** Public Graph; national clouds and the local simulator set their own. */
	graphBaseUrl: setting({
		name: 'GRAPH_BASE_URL',
		group: 'worker',
		default: new URL('https://graph.microsoft.com'),
		parse: parseGraphBaseUrl,
		doc: 'Graph\'s origin: `https://graph.microsoft.com`, a national cloud (`https://graph.microsoft.us`, `https://microsoftgraph.chinacloudapi.cn`, ...) or the local simulator. https only, except to a loopback host',
		shown: '`https://graph.microsoft.com`',
	}),
	/** The incompatible-access-package API is GA in v1.0. */
	graphApiVersion: setting({
		name: 'GRAPH_API_VERSION',
		group: 'worker',
		default: 'v1.0' as GraphApiVersion,
		parse: parseApiVersion,
		doc: '`v1.0` or `beta`',
	}),
	/** Requests in flight per process, shared by every invocation the process runs at once. */
	graphMaxConcurrency: setting({
		name: 'GRAPH_MAX_CONCURRENCY',
		group: 'worker',
		default: 8,
		parse: integerIn(1, 256),
		doc: 'the most Graph HTTP requests in flight at once per process, shared by every invocation (1 to 256); the engine adapts below it',
	}),
	/** Operations per `$batch` request (Graph's maximum); 1 turns batching off. */
	graphBatchSize: setting({
		name: 'GRAPH_BATCH_SIZE',
		group: 'worker',
		default: 20,
		parse: integerIn(1, 20),
		doc: 'operations per `$batch` request (1 to 20); `1` turns batching off and sends each operation on its own',
	}),
	graphRequestTimeoutSeconds: setting({
		name: 'GRAPH_REQUEST_TIMEOUT_SECONDS',
		group: 'worker',
		default: 30,
		parse: integerIn(1, 300),
		doc: 'per HTTP request (1 to 300)',
	}),
	/** A static bearer token (local simulator, tests). When set, no Azure credential is used. */
	graphAccessToken: setting({
		name: 'GRAPH_ACCESS_TOKEN',
		group: 'worker',
		default: undefined as string | undefined,
		parse: (raw: string): string | undefined => raw,
		doc: 'a static bearer token, for the local simulator and tests; when set no Azure credential is used',
		shown: 'unset',
	}),
	/** Under host.json's 10 min `functionTimeout`, leaving room for a last request (30 s) and for writing dead letters and
	 * re-queues. */
	invocationBudgetSeconds: setting({
		name: 'SOD_INVOCATION_BUDGET_SECONDS',
		group: 'worker',
		default: 420,
		parse: integerIn(5, 3600),
		doc: 'an invocation stops starting work after this long and re-queues the rest. Under the host the app refuses to start unless the budget, one request (`GRAPH_REQUEST_TIMEOUT_SECONDS`) and 60 s for writing dead letters and re-queues fit in host.json\'s `functionTimeout` (5 min when host.json sets none; no limit for `-1`): with this repository\'s 10 min, at most 510',
	}),
	/** Failed attempts per pair before it is dead-lettered `retries-exhausted`. Only failures count (5xx, timeouts, dropped
	 * connections, repeated 404s); waiting on throttling, an unreachable Graph or a full pace does not. */
	maxAttempts: setting({
		name: 'SOD_MAX_ATTEMPTS',
		group: 'worker',
		default: 5,
		parse: integerIn(1, 100),
		doc: 'failed attempts per pair before `retries-exhausted` (waiting on throttling or an unreachable Graph never counts)',
	}),
	/** 72 hours: an import queued on a Friday evening into a weekend of throttling or an outage still finishes on Monday; a
	 * pair older than that points at something structural, and an operator should see it. */
	maxPairAgeHours: setting({
		name: 'SOD_MAX_PAIR_AGE_HOURS',
		group: 'worker',
		default: 72,
		parse: hoursIn(0.001, 24 * 6),
		doc: 'a pair not applied this long after it first entered the queue is dead-lettered `expired` (decimals allowed, up to 144)',
	}),
	deadLetterContainer: setting({
		name: 'SOD_DEAD_LETTER_CONTAINER',
		group: 'worker',
		default: 'sod-sync-dead-letters',
		parse: parseContainerName,
		doc: 'blob container, in the `AzureWebJobsStorage` account, for the raw text of an unreadable message whose record would not fit a queue message (the record names the blob; `dead-letters redrive` replays it)',
	}),
	ledgerRetentionDays: setting({
		name: 'SOD_LEDGER_RETENTION_DAYS',
		group: 'worker',
		default: 90,
		parse: integerIn(0, 3650),
		doc: 'days the [import ledger](#watching-and-auditing-an-import-the-ledger) keeps an import (its rows in the `sodsyncledger` table of the `AzureWebJobsStorage` account, pruned once a day by `enqueue`); `0` turns the ledger off (`status`, `changes` and `undo` then have nothing to read)',
	}),
	throttleStateContainer: setting({
		name: 'SOD_THROTTLE_STATE_CONTAINER',
		group: 'worker',
		default: 'sod-sync-state' as string | undefined,
		parse: parseStateContainer,
		doc: 'blob container, in the `AzureWebJobsStorage` account, of the throttle state the instances share (one blob per pairs queue); `off` keeps it per process',
	}),
	/** 200 ms, doubling per retry (with jitter) up to 30 s: a lone 5xx or dropped connection is usually one bad node, so
	 * the first retry comes soon and repeated failures back off hard. A 404's waits start at ten times this (2 s): replication
	 * takes seconds. */
	retryBaseMs: setting({
		name: 'SOD_RETRY_BASE_MS',
		group: 'worker',
		default: 200,
		parse: integerIn(10, 60_000),
		doc: 'first wait before retrying a 5xx or a dropped connection, doubling (jittered) to 30 s; 404 waits start at ten times this',
	}),
	/** A new package can take seconds to replicate. */
	notFoundRetries: setting({
		name: 'SOD_NOT_FOUND_RETRIES',
		group: 'worker',
		default: 3,
		parse: integerIn(0, 20),
		doc: 'retries of a 404 before `not-found` (raise it where new packages take long to replicate)',
	}),
	reconcileSchedule: setting({
		name: 'SOD_RECONCILE_SCHEDULE',
		group: 'reconcile',
		default: '0 0 * * * *',
		parse: parseSchedule,
		doc: 'NCRONTAB (six fields: second minute hour day month weekday), e.g. `0 0 * * * *` (hourly). The timer binds `%SOD_RECONCILE_SCHEDULE%`, which the host resolves from the app settings before the app runs: unset, the host cannot index `reconcileSchedule` and the app does not start. To switch the schedule off, keep it set and set `AzureWebJobs.reconcileSchedule.Disabled` to `true`',
		shown: 'required (Function)',
	}),
	manifestContainer: setting({
		name: 'SOD_MANIFEST_CONTAINER',
		group: 'reconcile',
		default: 'sod-sync',
		parse: (raw: string) => raw,
		doc: 'the blob container holding the manifest',
	}),
	manifestBlob: setting({
		name: 'SOD_MANIFEST_BLOB',
		group: 'reconcile',
		default: 'manifest.csv',
		parse: (raw: string) => raw,
		doc: 'the manifest blob (`.csv`, or `.jsonl`/`.ndjson` for JSON Lines)',
	}),
	reconcileScope: setting({
		name: 'SOD_RECONCILE_SCOPE',
		group: 'reconcile',
		default: 'named' as 'named' | 'all',
		parse: parseScope,
		doc: '`named` or `all`',
	}),
	reconcileApply: setting({
		name: 'SOD_RECONCILE_APPLY',
		group: 'reconcile',
		default: false,
		parse: parseFlag,
		doc: '`true`: enqueue the missing links',
	}),
	reconcilePrune: setting({
		name: 'SOD_RECONCILE_PRUNE',
		group: 'reconcile',
		default: false,
		parse: parseFlag,
		doc: '`true` (with apply): also enqueue the extra links for removal',
	}),
};

type SettingTable = typeof settingTable;

/** Each setting's name, by key. */
export const settingNames = Object.fromEntries(Object.entries(settingTable).map(([key, entry]) => [key, entry.name])) as {
	readonly [Key in keyof SettingTable]: SettingTable[Key]['name'];
};

/** Each setting's default, by key (see `settingTable` for why each is what it is). */
export const defaults = Object.fromEntries(Object.entries(settingTable).map(([key, entry]) => [key, entry.default])) as {
	readonly [Key in keyof SettingTable]: SettingTable[Key]['default'];
};

/** The README's table of one group's settings, row for row. */
export function settingsTableMarkdown(group: SettingEntry['group']): string {
	const rows = Object.values(settingTable as Record<string, SettingEntry>)
		.filter(entry => entry.group === group)
		.map(entry => `| \`${entry.name}\` | ${entry.doc} | ${entry.shown ?? `\`${String(entry.default)}\``} |`);
	return ['| setting | meaning | default |', '| --- | --- | --- |', ...rows].join('\n');
}

/**
 * The names the Functions host knows the functions by. Letters and digits only: App Service on Linux accepts only
 * letters, digits, `.` and `_` in app setting names, and `AzureWebJobs.<function>.Disabled` is how a function is
 * switched off, so a hyphen in a function name would make it impossible to disable on Linux.
 */
export const functionNames = {
	syncPairs: 'syncPairs',
	reconcileSchedule: 'reconcileSchedule',
} as const;

/** The app setting that switches a function off (`true`) without a redeploy. */
export function disabledSettingName(functionName: string): string {
	return `AzureWebJobs.${functionName}.Disabled`;
}

/**
 * Settings of the platform that a deployment sets beside sod-sync's own (infra/app.bicep): the identity-based storage
 * connection (its table endpoint holds the import ledger; the identity has Storage Table Data Contributor), the managed
 * identity for Graph, Application Insights, and the switch that disables the timer.
 */
export const platformSettingNames = [
	'AzureWebJobsStorage__blobServiceUri',
	'AzureWebJobsStorage__queueServiceUri',
	'AzureWebJobsStorage__tableServiceUri',
	'AzureWebJobsStorage__credential',
	'AzureWebJobsStorage__clientId',
	'AZURE_CLIENT_ID',
	'APPLICATIONINSIGHTS_CONNECTION_STRING',
	'APPLICATIONINSIGHTS_AUTHENTICATION_STRING',
	disabledSettingName(functionNames.reconcileSchedule),
] as const;

/** Thrown when a setting is missing or malformed; the message names the setting. */
export class SettingsError extends Error {
	override name = 'SettingsError';
}

const queueNamePattern = /^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/;

/** Reads one setting by its entry: its parsed value, or its default when unset; a problem is added to `problems`. */
function settingReader(environment: Environment, problems: string[]) {
	return <T>(entry: SettingEntry<string, T>): T => {
		const raw = environment[entry.name]?.trim();
		if (raw === undefined || raw === '' || !entry.parse) {
			return entry.default;
		}

		try {
			return entry.parse(raw);
		} catch (error) {
			problems.push(`${entry.name}: ${(error as Error).message}`);
			return entry.default;
		}
	};
}

/**
 * Reads and checks every setting at once, so a misconfigured app fails at start with every problem named.
 *
 * @example
 * const settings = readSettings(process.env);
 */
export function readSettings(environment: Environment): Settings {
	const problems: string[] = [];
	const read = settingReader(environment, problems);
	const storage = readStorageConnection(environment, problems);
	const queueName = read(settingTable.queueName);
	const deadLetterQueueName = read(settingTable.deadLetterQueueName);
	if (queueName.length > 63 - '-poison'.length) {
		problems.push(`${settingNames.queueName}: '${queueName}' leaves no room for the '-poison' queue the host derives (56 characters at most)`);
	}

	if (queueName === deadLetterQueueName) {
		problems.push(`${settingNames.deadLetterQueueName}: must differ from ${settingNames.queueName} ('${queueName}')`);
	}

	const settings: Settings = {
		storage,
		queueName,
		deadLetterQueueName,
		graphBaseUrl: new URL(read(settingTable.graphBaseUrl)),
		graphApiVersion: read(settingTable.graphApiVersion),
		graphMaxConcurrency: read(settingTable.graphMaxConcurrency),
		graphBatchSize: read(settingTable.graphBatchSize),
		graphRequestTimeoutMs: read(settingTable.graphRequestTimeoutSeconds) * 1000,
		graphAccessToken: read(settingTable.graphAccessToken),
		invocationBudgetMs: read(settingTable.invocationBudgetSeconds) * 1000,
		maxAttempts: read(settingTable.maxAttempts),
		maxPairAgeMs: read(settingTable.maxPairAgeHours) * 3_600_000,
		throttleStateContainer: read(settingTable.throttleStateContainer),
		deadLetterContainer: read(settingTable.deadLetterContainer),
		ledgerRetentionDays: read(settingTable.ledgerRetentionDays),
		retryBaseMs: read(settingTable.retryBaseMs),
		notFoundRetries: read(settingTable.notFoundRetries),
	};

	if (problems.length > 0) {
		throw new SettingsError(`Invalid settings:\n- ${problems.join('\n- ')}`);
	}

	return settings;
}

function readStorageConnection(environment: Environment, problems: string[]): StorageConnection {
	const name = settingNames.storage;
	const connectionString = environment[name]?.trim();
	if (connectionString) {
		if (connectionString === 'UseDevelopmentStorage=true') {
			problems.push(
				`${name}: 'UseDevelopmentStorage=true' points at fixed Azurite ports; give the full connection string (see local.settings.sample.json)`,
			);
		} else if (!/(?:^|;)\s*(?:AccountName|QueueEndpoint|SharedAccessSignature)=/i.test(connectionString)) {
			problems.push(`${name}: not a storage connection string (no AccountName, QueueEndpoint or SharedAccessSignature)`);
		}

		return {kind: 'connection-string', connectionString};
	}

	const queueServiceUri = environment[`${name}__queueServiceUri`]?.trim();
	if (queueServiceUri) {
		try {
			const url = new URL(queueServiceUri);
			if (url.protocol !== 'https:' && !isLoopback(url.hostname)) {
				problems.push(`${name}__queueServiceUri: must be https:// (http:// only to a loopback host)`);
			}
		} catch {
			problems.push(`${name}__queueServiceUri: not a URL: '${queueServiceUri}'`);
		}

		return {
			kind: 'identity',
			queueServiceUri,
			blobServiceUri: environment[`${name}__blobServiceUri`]?.trim() || undefined,
			tableServiceUri: environment[`${name}__tableServiceUri`]?.trim() || undefined,
			managedIdentityClientId: environment[`${name}__clientId`]?.trim() || undefined,
		};
	}

	problems.push(`${name}: missing (a connection string, or ${name}__queueServiceUri for an identity-based connection)`);
	return {kind: 'connection-string', connectionString: ''};
}

function parseQueueName(raw: string): string {
	if (!queueNamePattern.test(raw)) {
		throw new Error(`'${raw}' is not a valid queue name (3-63 lower-case letters, digits and single hyphens)`);
	}

	return raw;
}

function parseGraphBaseUrl(raw: string): URL {
	// Credentials in the user-info part must not reach a log through this error: show them as ***.
	const shown = raw.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, '$1***@');
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		throw new Error(`'${shown}' is not a URL`);
	}

	if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname))) {
		throw new Error(`'${shown}' must be https:// (http:// is allowed only to a loopback host, for the simulator)`);
	}

	if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username || url.password) {
		throw new Error(`'${shown}' must be an origin only, such as https://graph.microsoft.com (no path, query or credentials)`);
	}

	return new URL(url.origin);
}

function parseApiVersion(raw: string): GraphApiVersion {
	if (raw !== 'v1.0' && raw !== 'beta') {
		throw new Error(`'${raw}' is not a Graph API version (v1.0 or beta)`);
	}

	return raw;
}

function integerIn(minimum: number, maximum: number): (raw: string) => number {
	return raw => {
		const value = Number(raw);
		if (!/^\d+$/.test(raw) || value < minimum || value > maximum) {
			throw new Error(`'${raw}' must be a whole number from ${minimum} to ${maximum}`);
		}

		return value;
	};
}

/** Hours, decimals allowed (tests use a few seconds' worth). */
function hoursIn(minimum: number, maximum: number): (raw: string) => number {
	return raw => {
		const value = Number(raw);
		if (!/^\d+(?:\.\d+)?$/.test(raw) || value < minimum || value > maximum) {
			throw new Error(`'${raw}' must be a number of hours from ${minimum} to ${maximum}`);
		}

		return value;
	};
}

const containerNamePattern = /^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/;

function parseStateContainer(raw: string): string | undefined {
	if (raw === 'off') {
		return undefined;
	}

	try {
		return parseContainerName(raw);
	} catch (error) {
		throw new Error(`${(error as Error).message} or 'off'`);
	}
}

function parseContainerName(raw: string): string {
	if (!containerNamePattern.test(raw)) {
		throw new Error(`'${raw}' is not a blob container name (3-63 lower-case letters, digits and single hyphens)`);
	}

	return raw;
}

export function isLoopback(hostname: string): boolean {
	return hostname === 'localhost' || hostname === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(hostname);
}

export interface ReconcileSettings {
	schedule: string;
	manifestContainer: string;
	manifestBlob: string;
	scope: 'named' | 'all';
	apply: boolean;
	prune: boolean;
}

/** The scheduled reconcile's settings (the timer Function only); checked like the others, every problem at once. */
export function readReconcileSettings(environment: Environment): ReconcileSettings {
	const problems: string[] = [];
	const read = settingReader(environment, problems);
	const settings: ReconcileSettings = {
		schedule: read(settingTable.reconcileSchedule),
		manifestContainer: read(settingTable.manifestContainer),
		manifestBlob: read(settingTable.manifestBlob),
		scope: read(settingTable.reconcileScope),
		apply: read(settingTable.reconcileApply),
		prune: read(settingTable.reconcilePrune),
	};
	if (settings.prune && !settings.apply) {
		problems.push(`${settingNames.reconcilePrune}: true needs ${settingNames.reconcileApply}=true (pruning is part of applying)`);
	}

	if (problems.length > 0) {
		throw new SettingsError(`Invalid settings:\n- ${problems.join('\n- ')}`);
	}

	return settings;
}

function parseSchedule(raw: string): string {
	if (raw.split(/\s+/).length !== 6) {
		throw new Error(`'${raw}' is not an NCRONTAB expression (six fields: second minute hour day month weekday)`);
	}

	return raw;
}

function parseScope(raw: string): 'named' | 'all' {
	if (raw !== 'named' && raw !== 'all') {
		throw new Error(`'${raw}' must be named or all`);
	}

	return raw;
}

function parseFlag(raw: string): boolean {
	const text = raw.toLowerCase();
	if (text !== 'true' && text !== 'false') {
		throw new Error(`'${text}' must be true or false`);
	}

	return text === 'true';
}

/**
 * Under the Functions host (which sets `FUNCTIONS_WORKER_RUNTIME`; on Azure the platform also sets `WEBSITE_SITE_NAME`),
 * every setting is checked when the app loads, so a bad one stops the app at start (the host reports the error and
 * runs no function; messages wait in the queue) instead of failing each message until it is poisoned. Elsewhere (tests,
 * tooling) importing the app needs no settings.
 */
export function checkSettingsAtStart(environment: Environment, functionTimeoutMs: () => number | undefined = functionTimeoutOfHostJson): void {
	if (!environment.FUNCTIONS_WORKER_RUNTIME && !environment.WEBSITE_SITE_NAME) {
		return;
	}

	const problems: string[] = [];
	for (const read of [readSettings, readReconcileSettings]) {
		try {
			const settings = read(environment);
			if ('invocationBudgetMs' in settings) {
				const problem = budgetProblem(settings, functionTimeoutMs());
				if (problem) {
					problems.push(problem);
				}
			}
		} catch (error) {
			problems.push((error as Error).message.replace(/^Invalid settings:\n/, ''));
		}
	}

	if (problems.length > 0) {
		throw new SettingsError(`sod-sync cannot start: invalid app settings:\n${problems.join('\n')}`);
	}
}

/**
 * Time an invocation needs after its budget: the last request may run its full timeout, then the dead letters and
 * re-queues are written. Defaults to 60 s for the writes.
 */
export const outputWriteAllowanceMs = 60_000;

/** Plans whose host.json does not set `functionTimeout` give an invocation at least this long (Consumption). */
const smallestDefaultFunctionTimeoutMs = 5 * 60_000;

/**
 * Why the budget cannot work under the host's `functionTimeout`, or undefined when it can: the host kills an
 * invocation at its timeout, and output bindings and re-queues of a killed invocation are never written.
 */
export function budgetProblem(settings: Pick<Settings, 'invocationBudgetMs' | 'graphRequestTimeoutMs'>, functionTimeoutMs: number | undefined): string | undefined {
	const timeoutMs = functionTimeoutMs ?? smallestDefaultFunctionTimeoutMs;
	const needed = settings.invocationBudgetMs + settings.graphRequestTimeoutMs + outputWriteAllowanceMs;
	if (Number.isNaN(timeoutMs) || needed <= timeoutMs) {
		return undefined;
	}

	const most = Math.floor((timeoutMs - settings.graphRequestTimeoutMs - outputWriteAllowanceMs) / 1000);
	const source = functionTimeoutMs === undefined ? 'host.json sets no functionTimeout, and the Consumption plan\'s default is' : 'host.json\'s functionTimeout is';
	return `- ${settingNames.invocationBudgetSeconds}: ${settings.invocationBudgetMs / 1000} s does not leave time to write dead letters and re-queues before the host stops the invocation: ${source} ${timeoutMs / 1000} s, and the budget plus one request (${settingNames.graphRequestTimeoutSeconds}, ${settings.graphRequestTimeoutMs / 1000} s) plus ${outputWriteAllowanceMs / 1000} s for the writes must fit in it (at most ${Math.max(0, most)} s here)`;
}

function functionTimeoutOfHostJson(): number | undefined {
	try {
		return readFunctionTimeoutMs();
	} catch {
		return Number.NaN; // No readable host.json beside the app: nothing to check against (the host would not start).
	}
}

/** Where Graph is and how to reach it, for commands that need nothing else (`sod-sync grant`). */
export function readGraphTarget(environment: Environment): Pick<Settings, 'graphBaseUrl' | 'graphAccessToken'> {
	const raw = environment[settingNames.graphBaseUrl]?.trim();
	try {
		return {
			graphBaseUrl: raw ? parseGraphBaseUrl(raw) : new URL(defaults.graphBaseUrl),
			graphAccessToken: environment[settingNames.graphAccessToken]?.trim() || undefined,
		};
	} catch (error) {
		throw new SettingsError(`Invalid settings:\n- ${settingNames.graphBaseUrl}: ${(error as Error).message}`);
	}
}
