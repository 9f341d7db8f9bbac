// The dead-letter record: written by the worker, read back by list and redrive (which must survive records it did not
// write).

import {describe, expect, it} from 'vitest';
import {errorInWords, failureRecord, invalidMessageRecord, invalidPairRecords, maximumRecordBytes, readDeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {encodedSize} from '../../src/message/message.js';

const context = {action: 'add' as const, attempts: 2, correlationId: 'import-1', sourceMessageId: 'm-1', at: new Date('2026-12-01T00:00:00Z')};

describe('dead-letter records', () => {
	it('round-trips every record the worker writes through readDeadLetterRecord', () => {
		const records = [
			failureRecord('not-found', {accessPackageId: 'a', incompatibleAccessPackageId: 'b'}, {status: 404, code: 'NotFound', message: 'gone', requestId: 'r'}, context),
			invalidMessageRecord('not valid JSON', 'hello', context),
			...invalidPairRecords(Array.from({length: 30}, (_, index) => ({raw: {accessPackageId: `bad-${index}`}, reason: 'not a GUID'})), context, 'base64'),
		];
		for (const record of records) {
			expect(readDeadLetterRecord(JSON.stringify(record))).toEqual({record});
		}
	});

	it('groups many invalid pairs of one message into records that each fit a queue message', () => {
		const invalid = Array.from({length: 3000}, (_, index) => ({raw: {accessPackageId: `bad-${index}`.padEnd(200, 'x')}, reason: 'not a GUID'}));
		const records = invalidPairRecords(invalid, context, 'base64');
		expect(records.length).toBeGreaterThan(1);
		expect(records.length).toBeLessThan(30);
		expect(records.flatMap(record => record.invalidPairs ?? [])).toHaveLength(3000);
		for (const record of records) {
			expect(encodedSize(JSON.stringify(record), 'base64')).toBeLessThanOrEqual(maximumRecordBytes);
		}
	});

	it.each([
		['not JSON', 'not JSON'],
		['an array', '[]'],
		['no reason', '{}'],
		['an unknown reason', JSON.stringify({...failureRecord('not-found', null, errorInWords('x'), context), reason: 'nope'})],
		['no error', JSON.stringify({reason: 'not-found'})],
		['an error status that is text', JSON.stringify({...failureRecord('not-found', null, errorInWords('x'), context), error: {message: 'x', status: '404'}})],
		['an action that is neither add nor remove', JSON.stringify({...failureRecord('not-found', null, errorInWords('x'), context), action: 'delete'})],
		['a message that is a number', JSON.stringify({...invalidMessageRecord('x', 'y', context), message: 12345})],
		['invalidPairs holding null', JSON.stringify({...failureRecord('invalid-pair', null, errorInWords('x'), context), invalidPairs: [null]})],
		['an invalid-message with neither message nor blob', JSON.stringify({...invalidMessageRecord('x', 'y', context), message: null})],
	])('reads %s as a problem, never as a record', (_name, text) => {
		const read = readDeadLetterRecord(text);
		expect(read).toHaveProperty('problem');
		expect('problem' in read && read.problem.length).toBeGreaterThan(5);
	});
});
