// The pairs-queue message contract, in one place: what producers may send, how it is read, and how sod-sync writes it.
//
// Accepted as the queue item (parsed value, string or Buffer):
// - one pair:        {"accessPackageId": "<guid>", "incompatibleAccessPackageId": "<guid>"}
//                    or {"accessPackageId": "<guid>", "incompatibleGroupId": "<guid>"} (a group rule)
// - an array of pairs
// - an envelope:     {"pairs": [...], "action": "add" | "remove", "symmetric": false, "correlationId": "...", "attempt": 0,
//                    "firstEnqueuedAt": "2026-11-30T12:00:00.000Z", "origin": "requeue" | "redrive"}
// - any of these as the `data` of a CloudEvents 1.0 or Event Grid event.

import {Buffer} from 'node:buffer';
import {checkPair, linkActions, pairFields, pairKey, quote, reversePair, symmetricGroupRule, type LinkAction, type Pair} from '../pair/pair.js';
import {jsonTextTooDeep, maximumJsonDepth, stringifyWithoutRecursion, valueTooDeep} from './json-depth.js';
import {hasUnsafeCharacters, printable} from '../text/untrusted-text.js';
import {messageOrigins, type MessageOrigin} from '../ledger/ledger.js';

export interface InvalidPair {
	/** The pair as it was sent, for the dead-letter record. */
	readonly raw: unknown;
	readonly reason: string;
}

export interface PairsMessage {
	/** Valid pairs, normalised, expanded when `symmetric`, each once. */
	readonly pairs: Pair[];
	readonly invalidPairs: InvalidPair[];
	readonly action: LinkAction;
	readonly correlationId: string | undefined;
	/** Failed attempts these pairs have spent (the worker's own re-queues count up; waiting spends none). */
	readonly attempt: number;
	/** When the pairs first entered the queue (epoch ms); the worker stamps it on re-queues. Undefined when not given. */
	readonly firstEnqueuedAt: number | undefined;
	/** Where the pairs came from, for the import ledger: `import` unless sod-sync re-queued or redrove them. */
	readonly origin: MessageOrigin;
}

export type ParsedMessage =
	| ({kind: 'pairs'} & PairsMessage)
	| {kind: 'invalid-message'; reason: string; text: string};

/** Envelope fields a producer may set; the names documented in the README. */
export interface PairsEnvelope {
	pairs: Array<{accessPackageId: string; incompatibleAccessPackageId: string} | {accessPackageId: string; incompatibleGroupId: string}>;
	action?: LinkAction;
	symmetric?: boolean;
	correlationId?: string;
	attempt?: number;
	/** ISO 8601; producers never need to set it (the message's insertion time stands in). */
	firstEnqueuedAt?: string;
	/** Set by sod-sync on the pairs it re-queues or redrives (the import ledger counts them once); producers leave it out. */
	origin?: Exclude<MessageOrigin, 'import'>;
}

const maximumCorrelationIdLength = 256;
/**
 * Items one message may hold. A full message holds about 500 pairs (64 KiB); a message of thousands of tiny items is
 * an attack on the dead-letter queue, refused whole as one record. Defaults to 1,000.
 */
export const maximumPairsPerMessage = 1000;
const tooDeep = `JSON nested deeper than ${maximumJsonDepth} levels`;
const tooMany = (count: number) =>
	`holds ${count.toLocaleString('en-US')} items; a message holds at most ${maximumPairsPerMessage.toLocaleString('en-US')} pairs (split the import: sod-sync enqueue packs them)`;
const maximumAttempt = 1_000;
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/;

/**
 * Reads a queue item into pairs, or says in words why it cannot be read. Never throws.
 *
 * @example
 * parseMessage('{"pairs":[{"accessPackageId":"...","incompatibleAccessPackageId":"..."}],"symmetric":true}')
 */
export function parseMessage(item: unknown): ParsedMessage {
	const isText = Buffer.isBuffer(item) || item instanceof Uint8Array || typeof item === 'string';
	// Depth first: everything after (JSON.parse, JSON.stringify, String()) recurses, and a hostile message nested
	// thousands deep would overflow the stack there.
	if (!isText && valueTooDeep(item)) {
		return {kind: 'invalid-message', reason: tooDeep, text: stringifyWithoutRecursion(item)};
	}

	const text = messageText(item);
	const invalid = (reason: string): ParsedMessage => ({kind: 'invalid-message', reason, text});
	if (isText && jsonTextTooDeep(text)) {
		return invalid(tooDeep);
	}

	let value: unknown = item;
	if (isText) {
		const parsed = parseJson(text);
		if (parsed.kind === 'invalid') {
			return invalid(parsed.reason);
		}

		value = parsed.value;
	}

	const unwrapped = unwrapEvent(value);
	if (unwrapped.kind === 'invalid') {
		return invalid(unwrapped.reason);
	}

	value = unwrapped.value;

	if (Array.isArray(value)) {
		return value.length > maximumPairsPerMessage ? invalid(tooMany(value.length)) : readPairs(value, {});
	}

	if (typeof value !== 'object' || value === null) {
		return invalid(`expected a pair, an array of pairs or an envelope with "pairs", got ${describeJson(value)}`);
	}

	const record = value as Record<string, unknown>;
	if (Object.hasOwn(record, 'pairs')) {
		const pairs = record.pairs;
		if (!Array.isArray(pairs)) {
			return invalid(`"pairs" must be an array, got ${describeJson(pairs)}`);
		}

		if (pairs.length > maximumPairsPerMessage) {
			return invalid(tooMany(pairs.length));
		}

		const envelope = readEnvelope(record);
		return envelope.kind === 'ok' ? readPairs(pairs, envelope.value) : invalid(envelope.reason);
	}

	if (Object.hasOwn(record, 'accessPackageId') || Object.hasOwn(record, 'incompatibleAccessPackageId') || Object.hasOwn(record, 'incompatibleGroupId')) {
		return readPairs([record], {});
	}

	const keys = Object.keys(record).slice(0, 5).map(key => quote(key, 40));
	return invalid(
		`expected a pair, an array of pairs or an envelope with "pairs"; the object has ${keys.length > 0 ? `keys ${keys.join(', ')}` : 'no keys'}`,
	);
}

type Read<T> = {kind: 'ok'; value: T} | {kind: 'invalid'; reason: string};

interface EnvelopeFields {
	action?: LinkAction;
	symmetric?: boolean;
	correlationId?: string;
	attempt?: number;
	firstEnqueuedAt?: number;
	origin?: MessageOrigin;
}

function readEnvelope(record: Record<string, unknown>): Read<EnvelopeFields> {
	const fields: EnvelopeFields = {};
	const {action, symmetric, correlationId, attempt, firstEnqueuedAt, origin} = ownFields(record, [
		'action',
		'symmetric',
		'correlationId',
		'attempt',
		'firstEnqueuedAt',
		'origin',
	]);
	if (action !== undefined) {
		if (!linkActions.includes(action as LinkAction)) {
			return {kind: 'invalid', reason: `"action" must be "add" or "remove", got ${describeJson(action)}`};
		}

		fields.action = action as LinkAction;
	}

	if (symmetric !== undefined) {
		if (typeof symmetric !== 'boolean') {
			return {kind: 'invalid', reason: `"symmetric" must be true or false, got ${describeJson(symmetric)}`};
		}

		fields.symmetric = symmetric;
	}

	if (correlationId !== undefined && correlationId !== null) {
		const problem = correlationIdProblem(correlationId);
		if (problem) {
			return {kind: 'invalid', reason: `"correlationId" ${problem}`};
		}

		fields.correlationId = correlationId as string;
	}

	if (attempt !== undefined) {
		if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 0 || attempt > maximumAttempt) {
			return {kind: 'invalid', reason: `"attempt" must be a whole number from 0 to ${maximumAttempt}, got ${describeJson(attempt)}`};
		}

		fields.attempt = attempt;
	}

	if (firstEnqueuedAt !== undefined && firstEnqueuedAt !== null) {
		const at = typeof firstEnqueuedAt === 'string' && isoTimestamp.test(firstEnqueuedAt) ? Date.parse(firstEnqueuedAt) : Number.NaN;
		if (!Number.isFinite(at)) {
			return {kind: 'invalid', reason: `"firstEnqueuedAt" must be an ISO 8601 UTC time such as "2026-11-30T12:00:00.000Z", got ${describeJson(firstEnqueuedAt)}`};
		}

		fields.firstEnqueuedAt = at;
	}

	if (origin !== undefined && origin !== null) {
		if (!messageOrigins.includes(origin as MessageOrigin)) {
			return {kind: 'invalid', reason: `"origin" must be "import", "requeue" or "redrive", got ${describeJson(origin)}`};
		}

		fields.origin = origin as MessageOrigin;
	}

	return {kind: 'ok', value: fields};
}

/**
 * Why `value` is not a correlation id, or undefined when it is one: a string of 1 to 256 printable characters (no
 * control characters or bidirectional overrides: it is printed in every log line of its pairs). The CLI checks its
 * `--correlation-id` with this too, so it never sends what the worker would refuse.
 */
export function correlationIdProblem(value: unknown): string | undefined {
	if (typeof value !== 'string' || value.length === 0 || value.length > maximumCorrelationIdLength) {
		return `must be a string of 1 to ${maximumCorrelationIdLength} characters, got ${describeJson(value)}`;
	}

	if (hasUnsafeCharacters(value)) {
		return `must hold printable characters only (no control characters), got ${printable(JSON.stringify(value), 80)}`;
	}

	return undefined;
}

function readPairs(rawPairs: unknown[], fields: EnvelopeFields): ParsedMessage {
	const pairs = new Map<string, Pair>();
	const invalidPairs: InvalidPair[] = [];
	const keep = (pair: Pair) => pairs.set(pairKey(pair), pair);
	for (const raw of rawPairs) {
		const checked = checkPair(raw);
		if (checked.kind === 'invalid') {
			invalidPairs.push({raw, reason: checked.reason});
			continue;
		}

		const {pair} = checked;
		if (fields.symmetric && pair.incompatibleGroupId !== undefined) {
			invalidPairs.push({raw, reason: symmetricGroupRule});
			continue;
		}

		keep(pair);
		if (fields.symmetric && pair.incompatibleAccessPackageId !== undefined) {
			keep(reversePair(pair));
		}
	}

	return {
		kind: 'pairs',
		pairs: [...pairs.values()],
		invalidPairs,
		action: fields.action ?? 'add',
		correlationId: fields.correlationId,
		attempt: fields.attempt ?? 0,
		firstEnqueuedAt: fields.firstEnqueuedAt,
		origin: fields.origin ?? 'import',
	};
}

/**
 * CloudEvents 1.0 (`specversion`) and Event Grid (`eventType` + `dataVersion`) events carry the message in `data`
 * (CloudEvents may use `data_base64`); an Event Grid subscription to a storage queue delivers one such event per message.
 */
function unwrapEvent(value: unknown): Read<unknown> {
	if (typeof value !== 'object' || value === null || Array.isArray(value)) {
		return {kind: 'ok', value};
	}

	const record = value as Record<string, unknown>;
	const isCloudEvent = Object.hasOwn(record, 'specversion');
	const isEventGridEvent = Object.hasOwn(record, 'eventType') && Object.hasOwn(record, 'dataVersion');
	if (!isCloudEvent && !isEventGridEvent) {
		return {kind: 'ok', value};
	}

	const kind = isCloudEvent ? 'CloudEvent' : 'Event Grid event';
	const {data, data_base64: dataBase64, datacontenttype: contentType} = ownFields(record, ['data', 'data_base64', 'datacontenttype']);
	if (isCloudEvent && dataBase64 !== undefined) {
		if (data !== undefined) {
			return {kind: 'invalid', reason: 'CloudEvent has both data and data_base64 (the spec allows one)'};
		}

		if (typeof dataBase64 !== 'string') {
			return {kind: 'invalid', reason: 'CloudEvent data_base64 must be a base64 string'};
		}

		const parsed = parseJson(Buffer.from(dataBase64, 'base64').toString('utf8'));
		return parsed.kind === 'ok' ? {kind: 'ok', value: parsed.value} : {kind: 'invalid', reason: `CloudEvent data_base64: ${parsed.reason}`};
	}

	if (data === undefined || data === null) {
		return {kind: 'invalid', reason: `${kind} has no data`};
	}

	if (typeof data === 'string') {
		if (isCloudEvent) {
			// CloudEvents JSON format: with a JSON (or no) datacontenttype, a string `data` IS a JSON string value and
			// MUST NOT be parsed again. The pairs belong in `data` as an object or array.
			const type = typeof contentType === 'string' ? contentType : 'none';
			return {
				kind: 'invalid',
				reason: `CloudEvent data is a string (datacontenttype ${quote(type, 60)}); send the pairs message as a JSON object or array in "data", or as bytes in "data_base64"`,
			};
		}

		const parsed = parseJson(data);
		return parsed.kind === 'ok' ? {kind: 'ok', value: parsed.value} : {kind: 'invalid', reason: `${kind} data: ${parsed.reason}`};
	}

	return {kind: 'ok', value: data};
}

function parseJson(text: string): Read<unknown> {
	if (text.trim() === '') {
		return {kind: 'invalid', reason: 'the message is empty'};
	}

	if (jsonTextTooDeep(text)) {
		return {kind: 'invalid', reason: tooDeep};
	}

	try {
		// A byte-order mark is how some Windows tools start UTF-8 text; JSON.parse would refuse it.
		return {kind: 'ok', value: JSON.parse(text.replace(/^\uFEFF/, ''))};
	} catch (error) {
		return {kind: 'invalid', reason: `not valid JSON (${(error as Error).message})`};
	}
}

function ownFields<K extends string>(record: Record<string, unknown>, names: readonly K[]): Partial<Record<K, unknown>> {
	const fields: Partial<Record<K, unknown>> = {};
	for (const name of names) {
		if (Object.hasOwn(record, name)) {
			fields[name] = record[name];
		}
	}

	return fields;
}

function describeJson(value: unknown): string {
	if (value === undefined) {
		return 'nothing';
	}

	const text = JSON.stringify(value) ?? String(value);
	return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

/** The item as text, for dead-letter records and for parsing. */
export function messageText(item: unknown): string {
	if (typeof item === 'string') {
		return item;
	}

	if (Buffer.isBuffer(item) || item instanceof Uint8Array) {
		return Buffer.from(item).toString('utf8');
	}

	try {
		return JSON.stringify(item) ?? String(item);
	} catch {
		return String(item);
	}
}

/** Storage queues take at most 64 KiB per message after encoding. */
export const maximumEncodedMessageBytes = 64 * 1024;

export type MessageEncoding = 'base64' | 'none';

export function encodedSize(text: string, encoding: MessageEncoding): number {
	const bytes = Buffer.byteLength(text, 'utf8');
	return encoding === 'base64' ? Math.ceil(bytes / 3) * 4 : bytes;
}

/**
 * Packs pairs into as few envelope messages as fit under the queue's size limit, in order, one pair at a time, so that
 * a stream of any length is packed in constant memory. Every message carries the same envelope fields.
 *
 * @example
 * const packer = new MessagePacker({action: 'add'}, 'base64');
 * for await (const pair of pairs) { const full = packer.add(pair); if (full) await queue.send(full); }
 * const last = packer.flush(); if (last) await queue.send(last);
 */
export class MessagePacker {
	readonly #head: string;
	readonly #emptyBytes: number;
	readonly #rawLimit: number;
	#batch: string[] = [];
	readonly #keys = new Set<string>();
	#bytes: number;

	constructor(envelope: Omit<PairsEnvelope, 'pairs'>, encoding: MessageEncoding, maximumBytes = maximumEncodedMessageBytes) {
		// The envelope is serialised once with "pairs" last; each pair then adds its own JSON and a comma.
		this.#head = JSON.stringify({...envelope, pairs: []}).slice(0, -'[]}'.length);
		this.#emptyBytes = Buffer.byteLength(this.#head, 'utf8') + '[]}'.length;
		this.#rawLimit = encoding === 'base64' ? Math.floor(maximumBytes / 4) * 3 : maximumBytes;
		this.#bytes = this.#emptyBytes;
	}

	/** Pairs waiting in the message being filled. */
	get pending(): number {
		return this.#batch.length;
	}

	/** True when the message being filled holds `pair` already (the worker would read it once). */
	holds(pair: Pair): boolean {
		return this.#keys.has(pairKey(pair));
	}

	/** Adds a pair; returns the finished message when this pair did not fit in it (the pair starts the next one). */
	add(pair: Pair): string | undefined {
		const json = JSON.stringify(pairFields(pair));
		const added = Buffer.byteLength(json, 'utf8') + (this.#batch.length > 0 ? 1 : 0);
		let full: string | undefined;
		if (this.#batch.length > 0 && this.#bytes + added > this.#rawLimit) {
			full = this.flush();
		}

		this.#bytes += Buffer.byteLength(json, 'utf8') + (this.#batch.length > 0 ? 1 : 0);
		this.#batch.push(json);
		this.#keys.add(pairKey(pair));
		return full;
	}

	/** The message being filled, if it holds any pair; the packer starts empty again. */
	flush(): string | undefined {
		if (this.#batch.length === 0) {
			return undefined;
		}

		const text = `${this.#head}[${this.#batch.join(',')}]}`;
		this.#batch = [];
		this.#keys.clear();
		this.#bytes = this.#emptyBytes;
		return text;
	}
}

/** `MessagePacker` over a whole list. */
export function* packPairs(
	pairs: Iterable<Pair>,
	envelope: Omit<PairsEnvelope, 'pairs'>,
	encoding: MessageEncoding,
	maximumBytes = maximumEncodedMessageBytes,
): Generator<string> {
	const packer = new MessagePacker(envelope, encoding, maximumBytes);
	for (const pair of pairs) {
		const full = packer.add(pair);
		if (full !== undefined) {
			yield full;
		}
	}

	const last = packer.flush();
	if (last !== undefined) {
		yield last;
	}
}
