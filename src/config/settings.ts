// Every setting sod-sync reads: its name, default and check live here and nowhere else.
// The Function, the CLI and the tests all read settings through `readSettings`.

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

/**
 * The settings table: the README's configuration section and `local.settings.sample.json` list exactly these names
 * (a test keeps them in step).
 */
export const settingNames = {
	storage: 'AzureWebJobsStorage',
	queueName: 'SOD_QUEUE',
	deadLetterQueueName: 'SOD_DEAD_LETTER_QUEUE',
	graphBaseUrl: 'GRAPH_BASE_URL',
	graphApiVersion: 'GRAPH_API_VERSION',
	graphMaxConcurrency: 'GRAPH_MAX_CONCURRENCY',
	graphBatchSize: 'GRAPH_BATCH_SIZE',
	graphRequestTimeoutSeconds: 'GRAPH_REQUEST_TIMEOUT_SECONDS',
	graphAccessToken: 'GRAPH_ACCESS_TOKEN',
	invocationBudgetSeconds: 'SOD_INVOCATION_BUDGET_SECONDS',
	maxAttempts: 'SOD_MAX_ATTEMPTS',
	maxPairAgeHours: 'SOD_MAX_PAIR_AGE_HOURS',
	throttleStateContainer: 'SOD_THROTTLE_STATE_CONTAINER',
	deadLetterContainer: 'SOD_DEAD_LETTER_CONTAINER',
	ledgerRetentionDays: 'SOD_LEDGER_RETENTION_DAYS',
	retryBaseMs: 'SOD_RETRY_BASE_MS',
	notFoundRetries: 'SOD_NOT_FOUND_RETRIES',
	reconcileSchedule: 'SOD_RECONCILE_SCHEDULE',
	manifestContainer: 'SOD_MANIFEST_CONTAINER',
	manifestBlob: 'SOD_MANIFEST_BLOB',
	reconcileScope: 'SOD_RECONCILE_SCOPE',
	reconcileApply: 'SOD_RECONCILE_APPLY',
	reconcilePrune: 'SOD_RECONCILE_PRUNE',
} as const;

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

export const defaults = {
	/** Defaults to `sod-pairs`. */
	queueName: 'sod-pairs',
	/** Defaults to `sod-pairs-dead-letter`. */
	deadLetterQueueName: 'sod-pairs-dead-letter',
	/** Defaults to public Graph; national clouds and the local simulator set their own. */
	graphBaseUrl: 'https://graph.microsoft.com',
	/** Defaults to `v1.0` (the incompatible-access-package API is GA there). */
	graphApiVersion: 'v1.0' as GraphApiVersion,
	/** Defaults to 8 requests in flight per process, shared by every invocation the process runs at once. */
	graphMaxConcurrency: 8,
	/** Defaults to 20 operations per `$batch` request (Graph's maximum); 1 turns batching off. */
	graphBatchSize: 20,
	/** Defaults to 30 s per HTTP request. */
	graphRequestTimeoutSeconds: 30,
	/**
	 * Defaults to 420 s: under host.json's 10 min `functionTimeout`, leaving room for a last request (30 s) and for
	 * writing dead letters and re-queues.
	 */
	invocationBudgetSeconds: 420,
	/**
	 * Defaults to 5 failed attempts per pair before it is dead-lettered `retries-exhausted`. Only failures count (5xx,
	 * timeouts, dropped connections, repeated 404s); waiting on throttling, an unreachable Graph or a full pace does not.
	 */
	maxAttempts: 5,
	/**
	 * Defaults to 72 hours: an import queued on a Friday evening into a weekend of throttling or an outage still
	 * finishes on Monday; a pair older than that points at something structural, and an operator should see it.
	 */
	maxPairAgeHours: 72,
	/**
	 * Defaults to `sod-sync-state`, in the AzureWebJobsStorage account: one blob per pairs queue. `off` keeps the
	 * throttle state per process.
	 */
	throttleStateContainer: 'sod-sync-state',
	/**
	 * Defaults to `sod-sync-dead-letters`, in the AzureWebJobsStorage account: the raw text of an unreadable message whose
	 * record would not fit a queue message (64 KiB) is kept there whole, and the record names the blob.
	 */
	deadLetterContainer: 'sod-sync-dead-letters',
	/**
	 * Defaults to 90 days: an import's ledger (what `status`, `changes` and `undo` read, in the `sodsyncledger` table of
	 * the AzureWebJobsStorage account) is kept that long after it was last written; 0 turns the ledger off.
	 */
	ledgerRetentionDays: 90,
	/**
	 * Defaults to 200 ms, doubling per retry (with jitter) up to 30 s: a lone 5xx or dropped connection is usually one bad
	 * node, so the first retry comes soon and repeated failures back off hard. A 404's waits start at ten times this
	 * (2 s): replication takes seconds.
	 */
	retryBaseMs: 200,
	/** Defaults to 3 retries of a 404 before `not-found` (a new package can take seconds to replicate). */
	notFoundRetries: 3,
	/** Defaults to hourly, on the hour (NCRONTAB: second minute hour day month weekday). */
	reconcileSchedule: '0 0 * * * *',
	/** Defaults to the `sod-sync` container. */
	manifestContainer: 'sod-sync',
	/** Defaults to `manifest.csv` (`.jsonl` or `.ndjson` for JSON Lines). */
	manifestBlob: 'manifest.csv',
	/** Defaults to `named`: only the packages the manifest names are read or written. */
	reconcileScope: 'named' as 'named' | 'all',
	/** Defaults to false: the schedule reports drift and changes nothing. */
	reconcileApply: false,
	/** Defaults to false: links no rule asks for are reported, never removed. */
	reconcilePrune: false,
} as const;

/** Thrown when a setting is missing or malformed; the message names the setting. */
export class SettingsError extends Error {
	override name = 'SettingsError';
}

const queueNamePattern = /^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$/;

/**
 * Reads and checks every setting at once, so a misconfigured app fails at start with every problem named.
 *
 * @example
 * const settings = readSettings(process.env);
 */
export function readSettings(environment: Environment): Settings {
	const problems: string[] = [];
	const read = <T>(name: string, parse: (raw: string) => T, fallback: T): T => {
		const raw = environment[name]?.trim();
		if (raw === undefined || raw === '') {
			return fallback;
		}

		try {
			return parse(raw);
		} catch (error) {
			problems.push(`${name}: ${(error as Error).message}`);
			return fallback;
		}
	};

	const storage = readStorageConnection(environment, problems);
	const queueName = read(settingNames.queueName, parseQueueName, defaults.queueName);
	const deadLetterQueueName = read(settingNames.deadLetterQueueName, parseQueueName, defaults.deadLetterQueueName);
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
		graphBaseUrl: read(settingNames.graphBaseUrl, parseGraphBaseUrl, new URL(defaults.graphBaseUrl)),
		graphApiVersion: read(settingNames.graphApiVersion, parseApiVersion, defaults.graphApiVersion),
		graphMaxConcurrency: read(settingNames.graphMaxConcurrency, integerIn(1, 256), defaults.graphMaxConcurrency),
		graphBatchSize: read(settingNames.graphBatchSize, integerIn(1, 20), defaults.graphBatchSize),
		graphRequestTimeoutMs:
			read(settingNames.graphRequestTimeoutSeconds, integerIn(1, 300), defaults.graphRequestTimeoutSeconds) * 1000,
		graphAccessToken: environment[settingNames.graphAccessToken]?.trim() || undefined,
		invocationBudgetMs:
			read(settingNames.invocationBudgetSeconds, integerIn(5, 3600), defaults.invocationBudgetSeconds) * 1000,
		maxAttempts: read(settingNames.maxAttempts, integerIn(1, 100), defaults.maxAttempts),
		maxPairAgeMs: read(settingNames.maxPairAgeHours, hoursIn(0.001, 24 * 6), defaults.maxPairAgeHours) * 3_600_000,
		throttleStateContainer: read(settingNames.throttleStateContainer, parseStateContainer, defaults.throttleStateContainer),
		deadLetterContainer: read(settingNames.deadLetterContainer, parseContainerName, defaults.deadLetterContainer),
		ledgerRetentionDays: read(settingNames.ledgerRetentionDays, integerIn(0, 3650), defaults.ledgerRetentionDays),
		retryBaseMs: read(settingNames.retryBaseMs, integerIn(10, 60_000), defaults.retryBaseMs),
		notFoundRetries: read(settingNames.notFoundRetries, integerIn(0, 20), defaults.notFoundRetries),
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
	const text = (name: string, fallback: string) => environment[name]?.trim() || fallback;
	const flag = (name: string, fallback: boolean) => {
		const raw = environment[name]?.trim().toLowerCase();
		if (raw === undefined || raw === '') {
			return fallback;
		}

		if (raw === 'true' || raw === 'false') {
			return raw === 'true';
		}

		problems.push(`${name}: '${raw}' must be true or false`);
		return fallback;
	};

	const schedule = text(settingNames.reconcileSchedule, defaults.reconcileSchedule);
	if (schedule.split(/\s+/).length !== 6) {
		problems.push(`${settingNames.reconcileSchedule}: '${schedule}' is not an NCRONTAB expression (six fields: second minute hour day month weekday)`);
	}

	const scope = text(settingNames.reconcileScope, defaults.reconcileScope);
	if (scope !== 'named' && scope !== 'all') {
		problems.push(`${settingNames.reconcileScope}: '${scope}' must be named or all`);
	}

	const settings: ReconcileSettings = {
		schedule,
		manifestContainer: text(settingNames.manifestContainer, defaults.manifestContainer),
		manifestBlob: text(settingNames.manifestBlob, defaults.manifestBlob),
		scope: scope === 'all' ? 'all' : 'named',
		apply: flag(settingNames.reconcileApply, defaults.reconcileApply),
		prune: flag(settingNames.reconcilePrune, defaults.reconcilePrune),
	};
	if (settings.prune && !settings.apply) {
		problems.push(`${settingNames.reconcilePrune}: true needs ${settingNames.reconcileApply}=true (pruning is part of applying)`);
	}

	if (problems.length > 0) {
		throw new SettingsError(`Invalid settings:\n- ${problems.join('\n- ')}`);
	}

	return settings;
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
