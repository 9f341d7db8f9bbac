// What every sod-sync command shares: its streams and environment, the flags that override settings, exit codes,
// and a progress line for terminals.

import {parseArgs, type ParseArgsConfig} from 'node:util';
import {readSettings, settingNames, type Environment, type Settings} from '../config/settings.js';

/** Exit codes, as the README documents them. */
export const exitCodes = {
	ok: 0,
	/** A runtime failure: storage or Graph unreachable, a bad setting. */
	error: 1,
	/** Bad usage or invalid input (nothing was done). */
	invalidInput: 2,
	/** `reconcile`: the tenant differs from the manifest. */
	drift: 3,
} as const;

export interface CommandIo {
	stdout: NodeJS.WritableStream & {isTTY?: boolean};
	stderr: NodeJS.WritableStream & {isTTY?: boolean};
	stdin: NodeJS.ReadableStream;
	environment: Environment;
	/** Aborts on SIGINT/SIGTERM. */
	signal: AbortSignal;
}

export class UsageError extends Error {
	override name = 'UsageError';
}

/** Flags that override a setting, for every command that talks to storage or Graph. */
export const settingFlags = {
	'connection-string': {type: 'string', setting: settingNames.storage, help: 'storage connection string'},
	queue: {type: 'string', setting: settingNames.queueName, help: 'pairs queue'},
	'dead-letter-queue': {type: 'string', setting: settingNames.deadLetterQueueName, help: 'dead-letter queue'},
	'graph-base-url': {type: 'string', setting: settingNames.graphBaseUrl, help: 'Graph origin (or the simulator)'},
	'graph-api-version': {type: 'string', setting: settingNames.graphApiVersion, help: 'v1.0 or beta'},
	concurrency: {type: 'string', setting: settingNames.graphMaxConcurrency, help: 'Graph requests in flight at once'},
} as const;

export const settingFlagsHelp = Object.entries(settingFlags)
	.map(([flag, {setting, help}]) => `  --${flag.padEnd(22)} ${help} (${setting})`)
	.join('\n');

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses `args` with the command's own options plus the setting flags and --help; unknown flags are a UsageError. */
export function parseCommandLine<T extends Options>(args: string[], options: T, allowPositionals = true) {
	const settingOptions = Object.fromEntries(Object.entries(settingFlags).map(([flag]) => [flag, {type: 'string'}])) as Record<
		keyof typeof settingFlags,
		{type: 'string'}
	>;
	try {
		return parseArgs({
			args,
			options: {...settingOptions, ...options, help: {type: 'boolean', short: 'h'}},
			allowPositionals,
			strict: true,
		});
	} catch (error) {
		throw new UsageError((error as Error).message);
	}
}

/** The environment with the setting flags laid over it, then checked as the Function checks it. */
export function settingsFrom(values: Record<string, unknown>, environment: Environment): {settings: Settings; environment: Environment} {
	const merged: Environment = {...environment};
	for (const [flag, {setting}] of Object.entries(settingFlags)) {
		const value = values[flag];
		if (typeof value === 'string') {
			merged[setting] = value;
		}
	}

	return {settings: readSettings(merged), environment: merged};
}

/** A line on stderr redrawn in place on a terminal (at most every 100 ms); silent elsewhere. */
export class ProgressLine {
	readonly #stream: CommandIo['stderr'];
	#last = 0;
	#shown = false;

	constructor(stream: CommandIo['stderr']) {
		this.#stream = stream;
	}

	update(text: string, force = false): void {
		if (!this.#stream.isTTY) {
			return;
		}

		const now = Date.now();
		if (!force && now - this.#last < 100) {
			return;
		}

		this.#last = now;
		this.#shown = true;
		this.#stream.write(`\r\u001B[2K${text}`);
	}

	/** Clears the line so that ordinary output follows cleanly. */
	clear(): void {
		if (this.#shown) {
			this.#stream.write('\r\u001B[2K');
			this.#shown = false;
		}
	}
}

export function formatCount(value: number): string {
	return value.toLocaleString('en-US');
}
