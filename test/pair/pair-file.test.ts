// The CSV / JSON Lines reader on its own: what each kind of line becomes, by line number.

import {Readable} from 'node:stream';
import {describe, expect, it} from 'vitest';
import {PairFileError, readPairRows, type PairFileFormat, type PairRow} from '../../src/pair/pair-file.js';

const a = 'c0a74b4d-1111-4c5a-9a1b-000000000001';
const b = '4f1c2a3b-2222-4c5a-9a1b-000000000002';

async function rows(text: string | Buffer[], format?: PairFileFormat): Promise<PairRow[]> {
	const read: PairRow[] = [];
	for await (const row of readPairRows(Readable.from(typeof text === 'string' ? [text] : text), format)) {
		read.push(row);
	}

	return read;
}

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
