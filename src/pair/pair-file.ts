// Reads pair files, a line at a time (constant memory for any size): CSV with a header naming `accessPackageId` and
// `incompatibleAccessPackageId`, `incompatibleGroupId` or both (each row fills one of the two; other columns ignored; an
// optional `symmetric` column), or JSON Lines of the same fields. Used by `sod-sync enqueue` and by reconcile manifests.

import {StringDecoder} from 'node:string_decoder';
import {jsonTextTooDeep, maximumJsonDepth} from '../message/json-depth.js';
import type {Readable} from 'node:stream';
import {checkPair, normalizeGuid, quote, symmetricGroupRule, type Pair} from './pair.js';

export type PairFileFormat = 'csv' | 'jsonl';

/** A row of a pair file (`enqueue`): a pair, or what is wrong with the line. */
export type PairRow = Extract<RuleRow, {kind: 'pair' | 'invalid'}>;

/** A row of a manifest: a pair, a set (or one member of a CSV set), or what is wrong with the line. */
export type RuleRow =
	| {kind: 'pair'; line: number; pair: Pair; symmetric: boolean}
	/** A set of mutually exclusive packages in one JSON line: `{"set": [A, B, C], "name": "..."}` (manifests only). */
	| {kind: 'set'; line: number; name: string | undefined; members: string[]}
	/** One member of a named set, in CSV: the `set` column names it, `accessPackageId` the member (manifests only). */
	| {kind: 'set-member'; line: number; name: string; accessPackageId: string}
	| {kind: 'invalid'; line: number; reason: string};

/** A set's name: at most this many characters. */
export const maximumSetNameLength = 256;

const setsBelongInManifests = 'a set is a manifest rule (sod-sync reconcile reads it and enqueues its links); enqueue takes pairs';

/** A problem with the file as a whole (no header, a broken quote): reading stops here. */
export class PairFileError extends Error {
	override name = 'PairFileError';
	readonly line: number;

	constructor(line: number, message: string) {
		super(`line ${line}: ${message}`);
		this.line = line;
	}
}

/** `csv` for `.csv`, `jsonl` for `.jsonl`/`.ndjson`/`.json`; otherwise undefined (the caller decides or sniffs). */
export function formatFromPath(path: string): PairFileFormat | undefined {
	const lower = path.toLowerCase();
	if (lower.endsWith('.csv')) {
		return 'csv';
	}

	if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) {
		return 'jsonl';
	}

	return undefined;
}

/**
 * Yields one row per data line (blank lines skipped), numbered as an editor numbers them.
 * With `format` undefined, a first non-blank line starting with `{` means JSON Lines, anything else CSV.
 *
 * @example
 * for await (const row of readPairRows(createReadStream('pairs.csv'), 'csv')) if (row.kind === 'invalid') console.error(row.line, row.reason);
 */
/** The longest line read; a longer one is a row error, and is skipped without being held. Defaults to 64 Ki characters. */
export const maximumLineLength = 65_536;

/**
 * The lines of `input` (`\n` or `\r\n`), each held only up to `maximum` characters: a longer line yields undefined,
 * its rest read past without keeping it, so memory stays bounded whatever the input.
 */
async function* boundedLines(input: Readable, maximum: number): AsyncGenerator<string | undefined> {
	const decoder = new StringDecoder('utf8');
	let current = '';
	let overflowed = false;
	const take = (piece: string) => {
		if (!overflowed) {
			current += piece;
			if (current.length > maximum + 1) {
				overflowed = true;
				current = '';
			}
		}
	};

	const finish = (): string | undefined => {
		const line = overflowed ? undefined : current.endsWith('\r') ? current.slice(0, -1) : current;
		current = '';
		overflowed = false;
		return line !== undefined && line.length > maximum ? undefined : line;
	};

	for await (const chunk of input) {
		const text = typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer);
		let start = 0;
		for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
			take(text.slice(start, end));
			yield finish();
			start = end + 1;
		}

		take(text.slice(start));
	}

	take(decoder.end());
	if (current !== '' || overflowed) {
		yield finish();
	}
}

/**
 * As `readRuleRows`, for `enqueue`: set rows are refused, and with `everyRowBothWays` (`--symmetric`) so is a group
 * rule (it has no other direction).
 */
export async function* readPairRows(input: Readable, format?: PairFileFormat, everyRowBothWays = false): AsyncGenerator<PairRow> {
	for await (const row of readRuleRows(input, format)) {
		if (row.kind === 'set' || row.kind === 'set-member') {
			yield {kind: 'invalid', line: row.line, reason: setsBelongInManifests};
		} else if (row.kind === 'pair' && everyRowBothWays && row.pair.incompatibleGroupId !== undefined) {
			yield {kind: 'invalid', line: row.line, reason: `${symmetricGroupRule} (--symmetric links every row both ways)`};
		} else {
			yield row;
		}
	}
}

/** As `readPairRows`, with set rows read too (manifests). */
export async function* readRuleRows(input: Readable, format?: PairFileFormat): AsyncGenerator<RuleRow> {
	let lineNumber = 0;
	let csvColumns: CsvColumns | undefined;
	let resolved = format;
	for await (const rawLine of boundedLines(input, maximumLineLength)) {
		lineNumber++;
		if (rawLine === undefined) {
			// Not held in memory: a row is a few hundred characters, and a line of megabytes is not a row.
			if (lineNumber === 1 && resolved !== 'jsonl') {
				throw new PairFileError(lineNumber, `the header is longer than ${maximumLineLength.toLocaleString('en-US')} characters`);
			}

			yield {kind: 'invalid', line: lineNumber, reason: `the line is longer than ${maximumLineLength.toLocaleString('en-US')} characters`};
			continue;
		}

		const line = lineNumber === 1 ? rawLine.replace(/^\uFEFF/, '') : rawLine;
		if (line.trim() === '') {
			continue;
		}

		resolved ??= line.trimStart().startsWith('{') ? 'jsonl' : 'csv';
		if (resolved === 'jsonl') {
			yield readJsonLine(line, lineNumber);
			continue;
		}

		const fields = splitCsvLine(line, lineNumber);
		if (csvColumns === undefined) {
			csvColumns = readHeader(fields, lineNumber);
			continue;
		}

		yield readCsvRow(fields, csvColumns, lineNumber);
	}

	if (resolved === 'csv' && csvColumns === undefined) {
		throw new PairFileError(lineNumber || 1, 'the file is empty: expected a header naming accessPackageId,incompatibleAccessPackageId (or incompatibleGroupId)');
	}
}

interface CsvColumns {
	accessPackageId: number;
	/** Either or both of the two target columns (a file may mix package and group rows). */
	incompatibleAccessPackageId: number | undefined;
	incompatibleGroupId: number | undefined;
	symmetric: number | undefined;
	set: number | undefined;
}

function readHeader(fields: string[], line: number): CsvColumns {
	const names = fields.map(field => field.trim().toLowerCase());
	const column = (name: string) => (names.includes(name) ? names.indexOf(name) : undefined);
	const accessPackageId = column('accesspackageid');
	const incompatibleAccessPackageId = column('incompatibleaccesspackageid');
	const incompatibleGroupId = column('incompatiblegroupid');
	if (accessPackageId === undefined || (incompatibleAccessPackageId === undefined && incompatibleGroupId === undefined)) {
		throw new PairFileError(
			line,
			`the header must name accessPackageId and incompatibleAccessPackageId or incompatibleGroupId (or both); found ${fields.map(field => JSON.stringify(field.trim())).join(', ').slice(0, 200)}`,
		);
	}

	return {accessPackageId, incompatibleAccessPackageId, incompatibleGroupId, symmetric: column('symmetric'), set: column('set')};
}

/** A cell's text; empty when the column is absent, the row is short, or the cell holds only spaces (`A, ,G`: a group rule). */
function cell(fields: readonly string[], column: number | undefined): string {
	const text = column === undefined ? '' : (fields[column] ?? '');
	return text.trim() === '' ? '' : text;
}

function readCsvRow(fields: string[], columns: CsvColumns, line: number): RuleRow {
	const setName = columns.set === undefined ? '' : (fields[columns.set] ?? '').trim();
	if (setName !== '') {
		return readCsvSetMember(fields, columns, setName, line);
	}

	// Short rows are fine when the target they fill is within them (a mixed file's package rows may stop early).
	const packageTarget = cell(fields, columns.incompatibleAccessPackageId);
	const groupTarget = cell(fields, columns.incompatibleGroupId);
	const fillsGroup = packageTarget === '' && groupTarget !== '';
	const target = (fillsGroup ? columns.incompatibleGroupId : columns.incompatibleAccessPackageId) ?? columns.incompatibleGroupId ?? 0;
	const needed = Math.max(columns.accessPackageId, target) + 1;
	if (fields.length < needed) {
		return {kind: 'invalid', line, reason: `expected at least ${needed} fields, found ${fields.length}`};
	}

	const symmetric = readSymmetric(columns.symmetric === undefined ? undefined : fields[columns.symmetric]);
	if (typeof symmetric === 'string') {
		return {kind: 'invalid', line, reason: symmetric};
	}

	return pairRow({accessPackageId: fields[columns.accessPackageId], incompatibleAccessPackageId: packageTarget, incompatibleGroupId: groupTarget}, symmetric, line);
}

function pairRow(raw: unknown, symmetric: boolean, line: number): RuleRow {
	const checked = checkPair(raw);
	if (checked.kind === 'invalid') {
		return {kind: 'invalid', line, reason: checked.reason};
	}

	if (symmetric && checked.pair.incompatibleGroupId !== undefined) {
		return {kind: 'invalid', line, reason: symmetricGroupRule};
	}

	return {kind: 'pair', line, pair: checked.pair, symmetric};
}

/** A CSV row whose `set` column names a set: it names one member, in `accessPackageId`, and nothing else. */
function readCsvSetMember(fields: string[], columns: CsvColumns, name: string, line: number): RuleRow {
	if (name.length > maximumSetNameLength) {
		return {kind: 'invalid', line, reason: `a set's name is at most ${maximumSetNameLength} characters`};
	}

	if ([columns.incompatibleAccessPackageId, columns.incompatibleGroupId, columns.symmetric].some(column => cell(fields, column) !== '')) {
		return {kind: 'invalid', line, reason: `a row of set ${quote(name)} names one member in accessPackageId and leaves the other columns (incompatibleAccessPackageId, incompatibleGroupId, symmetric) empty`};
	}

	const raw = (fields[columns.accessPackageId] ?? '').trim();
	const id = normalizeGuid(raw);
	return id ? {kind: 'set-member', line, name, accessPackageId: id} : {kind: 'invalid', line, reason: raw === '' ? `a row of set ${quote(name)} needs its member in accessPackageId` : `set ${quote(name)}: accessPackageId ${quote(raw)} is not a GUID`};
}

/** `{"set": [A, B, ...], "name": "..."}`: two or more distinct packages, an optional name, and no pair fields. */
function readJsonSet(value: Record<string, unknown>, line: number): RuleRow {
	for (const field of ['accessPackageId', 'incompatibleAccessPackageId', 'incompatibleGroupId', 'symmetric']) {
		if (Object.hasOwn(value, field)) {
			return {kind: 'invalid', line, reason: `a set row holds "set" and "name" only, not "${field}"`};
		}
	}

	const name = Object.hasOwn(value, 'name') ? value.name : undefined;
	if (name !== undefined && (typeof name !== 'string' || name.trim() === '' || name.length > maximumSetNameLength)) {
		return {kind: 'invalid', line, reason: `"name" must be a non-empty string of at most ${maximumSetNameLength} characters`};
	}

	if (!Array.isArray(value.set)) {
		return {kind: 'invalid', line, reason: `"set" must be an array of access package ids`};
	}

	const members: string[] = [];
	for (const [index, member] of (value.set as unknown[]).entries()) {
		const id = typeof member === 'string' ? normalizeGuid(member) : undefined;
		if (!id) {
			return {kind: 'invalid', line, reason: `"set"[${index}] is not an access package id (a GUID): ${typeof member === 'string' ? quote(member) : JSON.stringify(member)?.slice(0, 40)}`};
		}

		if (!members.includes(id)) {
			members.push(id);
		}
	}

	if (members.length < 2) {
		return {kind: 'invalid', line, reason: `a set names at least two different packages, got ${members.length}`};
	}

	return {kind: 'set', line, name: typeof name === 'string' ? name.trim() : undefined, members};
}

function readJsonLine(text: string, line: number): RuleRow {
	if (jsonTextTooDeep(text)) {
		return {kind: 'invalid', line, reason: `JSON nested deeper than ${maximumJsonDepth} levels`};
	}

	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch (error) {
		return {kind: 'invalid', line, reason: `not valid JSON (${(error as Error).message})`};
	}

	if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'set')) {
		return readJsonSet(value as Record<string, unknown>, line);
	}

	const symmetricValue =
		typeof value === 'object' && value !== null && Object.hasOwn(value, 'symmetric') ? (value as {symmetric: unknown}).symmetric : undefined;
	if (symmetricValue !== undefined && typeof symmetricValue !== 'boolean') {
		return {kind: 'invalid', line, reason: `"symmetric" must be true or false, got ${JSON.stringify(symmetricValue)?.slice(0, 40)}`};
	}

	return pairRow(value, symmetricValue === true, line);
}

function readSymmetric(value: string | undefined): boolean | string {
	const text = value?.trim().toLowerCase() ?? '';
	if (['', 'false', 'no', '0'].includes(text)) {
		return false;
	}

	if (['true', 'yes', '1'].includes(text)) {
		return true;
	}

	return `symmetric must be true or false, got ${JSON.stringify(value).slice(0, 40)}`;
}

/** RFC 4180 fields of one line: quoted fields may hold commas and doubled quotes, not line breaks. */
export function splitCsvLine(line: string, lineNumber: number): string[] {
	const fields: string[] = [];
	let field = '';
	let index = 0;
	let quoted = false;
	let fieldStart = true;
	while (index < line.length) {
		const character = line[index]!;
		if (quoted) {
			if (character === '"' && line[index + 1] === '"') {
				field += '"';
				index += 2;
				continue;
			}

			if (character === '"') {
				quoted = false;
			} else {
				field += character;
			}
		} else if (character === '"' && fieldStart) {
			quoted = true;
		} else if (character === ',') {
			fields.push(field);
			field = '';
			fieldStart = true;
			index++;
			continue;
		} else {
			field += character;
		}

		fieldStart = false;
		index++;
	}

	if (quoted) {
		throw new PairFileError(lineNumber, 'a quoted field is not closed (line breaks inside fields are not supported)');
	}

	fields.push(field);
	return fields;
}
