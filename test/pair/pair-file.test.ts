// The CSV / JSON Lines reader on its own: what each kind of line becomes, by line number.

import {Readable} from 'node:stream';
import {describe, expect, it} from 'vitest';
import {PairFileError, readPairRows, readRuleRows, type PairFileFormat, type PairRow, type RuleRow} from '../../src/pair/pair-file.js';

const a = 'c0a74b4d-1111-4c5a-9a1b-000000000001';
const b = '4f1c2a3b-2222-4c5a-9a1b-000000000002';

async function rows(text: string | Buffer[], format?: PairFileFormat): Promise<PairRow[]> {
	const read: PairRow[] = [];
	for await (const row of readPairRows(Readable.from(typeof text === 'string' ? [text] : text), format)) {
		read.push(row);
	}

	return read;
}

describe('readPairRows: group rules', () => {
	const g = '7d2e9f10-3333-4c5a-9a1b-000000000003';

	it('reads a CSV that mixes package and group rows, each row filling one of the two columns', async () => {
		const text = `accessPackageId,incompatibleAccessPackageId,incompatibleGroupId\n${a},${b},\n${a},,${g.toUpperCase()}\n${b},${a}\n${b}, ,${g}\n`;
		expect(await rows(text)).toEqual([
			{kind: 'pair', line: 2, pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: false},
			{kind: 'pair', line: 3, pair: {accessPackageId: a, incompatibleGroupId: g}, symmetric: false},
			{kind: 'pair', line: 4, pair: {accessPackageId: b, incompatibleAccessPackageId: a}, symmetric: false},
			// A cell of spaces is empty.
			{kind: 'pair', line: 5, pair: {accessPackageId: b, incompatibleGroupId: g}, symmetric: false},
		]);
	});

	it('reads a CSV of group rules only, and JSON Lines of both kinds', async () => {
		expect(await rows(`accessPackageId,incompatibleGroupId\n${a},${g}\n`)).toEqual([{kind: 'pair', line: 2, pair: {accessPackageId: a, incompatibleGroupId: g}, symmetric: false}]);
		expect(await rows(`{"accessPackageId":"${a}","incompatibleGroupId":"${g}"}\n{"accessPackageId":"${a}","incompatibleAccessPackageId":"${b}","symmetric":true}\n`)).toEqual([
			{kind: 'pair', line: 1, pair: {accessPackageId: a, incompatibleGroupId: g}, symmetric: false},
			{kind: 'pair', line: 2, pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: true},
		]);
	});

	it('refuses a row filling both columns or neither, a symmetric group rule, and any group rule under --symmetric', async () => {
		const text = `accessPackageId,incompatibleAccessPackageId,incompatibleGroupId,symmetric\n${a},${b},${g},\n${a},,,\n${a},,${g},true\n${a},,${g},\n`;
		expect(await rows(text)).toEqual([
			{kind: 'invalid', line: 2, reason: 'a pair names incompatibleAccessPackageId or incompatibleGroupId, not both'},
			{kind: 'invalid', line: 3, reason: 'incompatibleAccessPackageId (or incompatibleGroupId) is missing'},
			{kind: 'invalid', line: 4, reason: expect.stringMatching(/^symmetric applies to package rules only: a group has no incompatible list/)},
			{kind: 'pair', line: 5, pair: {accessPackageId: a, incompatibleGroupId: g}, symmetric: false},
		]);
		const everyRowBothWays: PairRow[] = [];
		for await (const row of readPairRows(Readable.from([`accessPackageId,incompatibleAccessPackageId,incompatibleGroupId\n${a},,${g}\n${a},${b},\n`]), 'csv', true)) {
			everyRowBothWays.push(row);
		}

		expect(everyRowBothWays).toEqual([
			{kind: 'invalid', line: 2, reason: expect.stringMatching(/symmetric applies to package rules only.*\(--symmetric links every row both ways\)$/)},
			{kind: 'pair', line: 3, pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: false},
		]);
	});

	it('names both target columns when the header has neither', async () => {
		await expect(rows(`accessPackageId,other\n${a},${b}\n`)).rejects.toThrow(/line 1: the header must name accessPackageId and incompatibleAccessPackageId or incompatibleGroupId/);
	});
});

describe('readPairRows', () => {
	it('reads CSV by its header, in any column order, with CRLF, a BOM, quotes and blank lines', async () => {
		const text = `\uFEFFnote,incompatibleAccessPackageId,accessPackageId,symmetric\r\n"a, quoted ""note""",${b},${a},true\r\n\r\nx,${a},${b},\r\n`;
		expect(await rows(text)).toEqual([
			{kind: 'pair', line: 2, pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: true},
			{kind: 'pair', line: 4, pair: {accessPackageId: b, incompatibleAccessPackageId: a}, symmetric: false},
		]);
	});

	it('numbers each bad row by its line and says what is wrong', async () => {
		const read = await rows(`accessPackageId,incompatibleAccessPackageId\n${a}\nnot-a-guid,${b}\n${a},${a}\n`);
		expect(read).toEqual([
			{kind: 'invalid', line: 2, reason: 'expected at least 2 fields, found 1'},
			{kind: 'invalid', line: 3, reason: expect.stringMatching(/accessPackageId "not-a-guid" is not a GUID/)},
			{kind: 'invalid', line: 4, reason: expect.stringMatching(/cannot be incompatible with itself/)},
		]);
	});

	it('reads JSON Lines (detected from a first line starting with {), with per-row symmetric', async () => {
		const text = `{"accessPackageId":"${a}","incompatibleAccessPackageId":"${b}","symmetric":true}\n{"accessPackageId":"${b}","incompatibleAccessPackageId":"${a}"}\n{bad json\n`;
		const read = await rows(text);
		expect(read.slice(0, 2)).toEqual([
			{kind: 'pair', line: 1, pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: true},
			{kind: 'pair', line: 2, pair: {accessPackageId: b, incompatibleAccessPackageId: a}, symmetric: false},
		]);
		expect(read[2]).toMatchObject({kind: 'invalid', line: 3, reason: expect.stringMatching(/^not valid JSON/)});
	});

	it('joins lines split across chunks, including a multi-byte character cut in two', async () => {
		const text = Buffer.from(`accessPackageId,incompatibleAccessPackageId,note\n${a},${b},café\n`);
		const cut = text.indexOf(Buffer.from('é')) + 1;
		expect(await rows([text.subarray(0, 20), text.subarray(20, cut), text.subarray(cut)])).toEqual([
			{kind: 'pair', line: 2, pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: false},
		]);
	});

	it('refuses an empty file and a header without the columns', async () => {
		await expect(rows('', 'csv')).rejects.toBeInstanceOf(PairFileError);
		await expect(rows('a,b\n1,2\n')).rejects.toThrow(/line 1: the header must name accessPackageId and incompatibleAccessPackageId/);
	});
});

describe('readRuleRows: sets of mutually exclusive packages (manifests)', () => {
	const c = '9e8d7c6b-3333-4c5a-9a1b-000000000003';
	async function ruleRows(text: string): Promise<RuleRow[]> {
		const read: RuleRow[] = [];
		for await (const row of readRuleRows(Readable.from([text]))) {
			read.push(row);
		}

		return read;
	}

	it('reads a JSON Lines set, its members normalised and each once, beside pair rows', async () => {
		const text = `${JSON.stringify({set: [a, b.toUpperCase(), c, a], name: ' finance '})}\n${JSON.stringify({set: [a, b]})}\n${JSON.stringify({accessPackageId: a, incompatibleAccessPackageId: c})}\n`;
		expect(await ruleRows(text)).toEqual([
			{kind: 'set', line: 1, name: 'finance', members: [a, b, c]},
			{kind: 'set', line: 2, name: undefined, members: [a, b]},
			{kind: 'pair', line: 3, pair: {accessPackageId: a, incompatibleAccessPackageId: c}, symmetric: false},
		]);
	});

	it('reads a CSV set column: one member per row, pair rows beside them', async () => {
		expect(await ruleRows(`accessPackageId,incompatibleAccessPackageId,set\n${a},,finance\n${b},,finance\n${a},${c},\n`)).toEqual([
			{kind: 'set-member', line: 2, name: 'finance', accessPackageId: a},
			{kind: 'set-member', line: 3, name: 'finance', accessPackageId: b},
			{kind: 'pair', line: 4, pair: {accessPackageId: a, incompatibleAccessPackageId: c}, symmetric: false},
		]);
	});

	it.each([
		[JSON.stringify({set: [a]}), 'a set names at least two different packages, got 1'],
		[JSON.stringify({set: [a, a]}), 'a set names at least two different packages, got 1'],
		[JSON.stringify({set: a}), '"set" must be an array of access package ids'],
		[JSON.stringify({set: [a, 'nope']}), '"set"[1] is not an access package id (a GUID): "nope"'],
		[JSON.stringify({set: [a, b], name: 7}), '"name" must be a non-empty string of at most 256 characters'],
		[JSON.stringify({set: [a, b], accessPackageId: a}), 'a set row holds "set" and "name" only, not "accessPackageId"'],
	])('refuses %s: %s', async (line, reason) => {
		expect(await ruleRows(`${line}\n`)).toEqual([{kind: 'invalid', line: 1, reason}]);
	});

	it('refuses a CSV set row that names a pair, or no member', async () => {
		expect(await ruleRows(`accessPackageId,incompatibleAccessPackageId,set\n${a},${b},x\n,,x\n`)).toEqual([
			{kind: 'invalid', line: 2, reason: 'a row of set "x" names one member in accessPackageId and leaves the other columns (incompatibleAccessPackageId, incompatibleGroupId, symmetric) empty'},
			{kind: 'invalid', line: 3, reason: 'a row of set "x" needs its member in accessPackageId'},
		]);
	});

	it('in a pair file (enqueue) a set row is invalid, saying where sets belong', async () => {
		expect(await rows(`${JSON.stringify({set: [a, b]})}\n`)).toEqual([
			{kind: 'invalid', line: 1, reason: 'a set is a manifest rule (sod-sync reconcile reads it and enqueues its links); enqueue takes pairs'},
		]);
	});
});
