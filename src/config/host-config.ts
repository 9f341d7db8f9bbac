// host.json is the one source of the queue settings the Functions host applies; the worker (for the encoding of what
// it writes) and the local queue host (for everything) read them from there.

import {existsSync, readFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import type {MessageEncoding} from '../message/message.js';

export interface QueueHostConfig {
	/** Messages fetched per poll; defaults to 16 (Functions' default), at most 32. */
	batchSize: number;
	/** Fetch more when fewer than this many are in flight; defaults to batchSize / 2. */
	newBatchThreshold: number;
	/** Deliveries before a failing message moves to `<queue>-poison`; defaults to 5. */
	maxDequeueCount: number;
	/** How long a failed message stays invisible before its next delivery; defaults to 0. */
	visibilityTimeoutMs: number;
	/** Longest wait between polls of an empty queue; defaults to 1 min. */
	maxPollingIntervalMs: number;
	/** Defaults to base64. */
	messageEncoding: MessageEncoding;
}

/** Reads `extensions.queues` of the host.json found next to (or above) this module, with the host's own defaults. */
export function readQueueHostConfig(path = findHostJson()): QueueHostConfig {
	const json = JSON.parse(readFileSync(path, 'utf8')) as {extensions?: {queues?: Record<string, unknown>}};
	return queueHostConfigFrom(json.extensions?.queues ?? {});
}

export function queueHostConfigFrom(queues: Record<string, unknown>): QueueHostConfig {
	const batchSize = numberOr(queues.batchSize, 16);
	if (batchSize < 1 || batchSize > 32) {
		throw new RangeError(`host.json extensions.queues.batchSize must be 1 to 32, got ${batchSize}`);
	}

	const encoding = queues.messageEncoding ?? 'base64';
	if (encoding !== 'base64' && encoding !== 'none') {
		throw new RangeError(`host.json extensions.queues.messageEncoding must be "base64" or "none", got ${JSON.stringify(encoding)}`);
	}

	return {
		batchSize,
		newBatchThreshold: numberOr(queues.newBatchThreshold, Math.floor(batchSize / 2)),
		maxDequeueCount: numberOr(queues.maxDequeueCount, 5),
		visibilityTimeoutMs: timeSpanMs(queues.visibilityTimeout, 0),
		maxPollingIntervalMs: timeSpanMs(queues.maxPollingInterval, 60_000),
		messageEncoding: encoding,
	};
}

/**
 * host.json's `functionTimeout` in ms: undefined when host.json does not set it (the plan's default applies: 5 min on
 * Consumption, 30 min on Flex Consumption), Infinity for `-1` (no limit, Premium and Dedicated plans).
 */
export function readFunctionTimeoutMs(path = findHostJson()): number | undefined {
	const json = JSON.parse(readFileSync(path, 'utf8')) as {functionTimeout?: unknown};
	if (json.functionTimeout === undefined || json.functionTimeout === null) {
		return undefined;
	}

	if (json.functionTimeout === '-1' || json.functionTimeout === -1) {
		return Number.POSITIVE_INFINITY;
	}

	return timeSpanMs(json.functionTimeout, Number.NaN);
}

function numberOr(value: unknown, fallback: number): number {
	return typeof value === 'number' && Number.isFinite(value) ? value : fallback;
}

/** `hh:mm:ss` (optionally `d.hh:mm:ss` and fractional seconds), as host.json writes a TimeSpan. */
function timeSpanMs(value: unknown, fallback: number): number {
	if (typeof value !== 'string') {
		return fallback;
	}

	const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value.trim());
	if (!match) {
		throw new RangeError(`host.json: ${JSON.stringify(value)} is not a TimeSpan (hh:mm:ss)`);
	}

	const [, days = '0', hours, minutes, seconds] = match;
	return Math.round((((Number(days) * 24 + Number(hours)) * 60 + Number(minutes)) * 60 + Number(seconds)) * 1000);
}

function findHostJson(): string {
	let directory = dirname(fileURLToPath(import.meta.url));
	for (let level = 0; level < 4; level++) {
		const candidate = join(directory, 'host.json');
		if (existsSync(candidate)) {
			return candidate;
		}

		directory = dirname(directory);
	}

	throw new Error('host.json not found above the sod-sync modules');
}
