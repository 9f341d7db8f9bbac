// Reads pair files, a line at a time (constant memory for any size): CSV with a header naming `accessPackageId` and
// `incompatibleAccessPackageId` (other columns ignored; an optional `symmetric` column), or JSON Lines of the same fields.
// Used by `sod-sync enqueue` and by reconcile manifests.

import {StringDecoder} from 'node:string_decoder';
import {jsonTextTooDeep, maximumJsonDepth} from '../message/json-depth.js';
import type {Readable} from 'node:stream';
import {checkPair, type Pair} from './pair.js';

export type PairFileFormat = 'csv' | 'jsonl';

export type PairRow =
	| {kind: 'pair'; line: number; pair: Pair; symmetric: boolean}
	| {kind: 'invalid'; line: number; reason: string};

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

export async function* readPairRows(input: Readable, format?: PairFileFormat): AsyncGenerator<PairRow> {
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
		throw new PairFileError(lineNumber || 1, 'the file is empty: expected a header naming accessPackageId,incompatibleAccessPackageId');
	}
}

interface CsvColumns {
	accessPackageId: number;
	incompatibleAccessPackageId: number;
	symmetric: number | undefined;
}

function readHeader(fields: string[], line: number): CsvColumns {
	const names = fields.map(field => field.trim().toLowerCase());
	const accessPackageId = names.indexOf('accesspackageid');
	const incompatibleAccessPackageId = names.indexOf('incompatibleaccesspackageid');
	if (accessPackageId === -1 || incompatibleAccessPackageId === -1) {
		throw new PairFileError(
			line,
			`the header must name accessPackageId and incompatibleAccessPackageId; found ${fields.map(field => JSON.stringify(field.trim())).join(', ').slice(0, 200)}`,
		);
	}

	const symmetric = names.indexOf('symmetric');
	return {accessPackageId, incompatibleAccessPackageId, symmetric: symmetric === -1 ? undefined : symmetric};
}

function readCsvRow(fields: string[], columns: CsvColumns, line: number): PairRow {
	const needed = Math.max(columns.accessPackageId, columns.incompatibleAccessPackageId) + 1;
	if (fields.length < needed) {
		return {kind: 'invalid', line, reason: `expected at least ${needed} fields, found ${fields.length}`};
	}

	const symmetric = readSymmetric(columns.symmetric === undefined ? undefined : fields[columns.symmetric]);
	if (typeof symmetric === 'string') {
		return {kind: 'invalid', line, reason: symmetric};
	}

	const checked = checkPair({
		accessPackageId: fields[columns.accessPackageId],
		incompatibleAccessPackageId: fields[columns.incompatibleAccessPackageId],
	});
	return checked.kind === 'valid' ? {kind: 'pair', line, pair: checked.pair, symmetric} : {kind: 'invalid', line, reason: checked.reason};
}

function readJsonLine(text: string, line: number): PairRow {
	if (jsonTextTooDeep(text)) {
		return {kind: 'invalid', line, reason: `JSON nested deeper than ${maximumJsonDepth} levels`};
	}

	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch (error) {
		return {kind: 'invalid', line, reason: `not valid JSON (${(error as Error).message})`};
	}

	const symmetricValue =
		typeof value === 'object' && value !== null && Object.hasOwn(value, 'symmetric') ? (value as {symmetric: unknown}).symmetric : undefined;
	if (symmetricValue !== undefined && typeof symmetricValue !== 'boolean') {
		return {kind: 'invalid', line, reason: `"symmetric" must be true or false, got ${JSON.stringify(symmetricValue)?.slice(0, 40)}`};
	}

	const checked = checkPair(value);
	return checked.kind === 'valid' ? {kind: 'pair', line, pair: checked.pair, symmetric: symmetricValue === true} : {kind: 'invalid', line, reason: checked.reason};
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
