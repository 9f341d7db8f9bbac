// Graph's answers, read from wherever they arrive and classified once.

import {describe, expect, it} from 'vitest';
import {classifyAnswer, outcomeUnknown, readBatchItem, readSdkError, transportErrorNames, type GraphAnswer, type GraphFailureKind} from '../../src/graph/graph-failure.js';

const now = Date.parse('2026-12-01T00:00:00Z');

describe('classifyAnswer', () => {
	it.each<[number, GraphFailureKind]>([
		[400, 'bad-request'],
		[401, 'unauthorized'],
		[403, 'forbidden'],
		[404, 'not-found'],
		[409, 'conflict'],
		[412, 'bad-request'],
		[429, 'throttled'],
		[500, 'server'],
		[503, 'server'],
	])('HTTP %i is %s', (status, kind) => {
		expect(classifyAnswer({kind: 'response', status}, now).kind).toBe(kind);
	});

	it.each<[string | undefined, GraphFailureKind]>([
		[transportErrorNames.token, 'unauthorized'],
		[transportErrorNames.timeout, 'timeout'],
		[transportErrorNames.unreachable, 'unreachable'],
		[transportErrorNames.untrustedOrigin, 'bad-request'],
		[transportErrorNames.aborted, 'aborted'],
		[transportErrorNames.network, 'network'],
		['TypeError', 'network'],
		[undefined, 'network'],
	])('no response, %s: %s', (name, kind) => {
		expect(classifyAnswer({kind: 'no-response', name, message: 'x'}, now).kind).toBe(kind);
	});

	it('keeps the Retry-After (seconds or an HTTP date), the code and the request id, each bounded', () => {
		const answer: GraphAnswer = {kind: 'response', status: 429, code: 'TooManyRequests', message: 'slow down', requestId: 'r-1', retryAfter: '2'};
		expect(classifyAnswer(answer, now)).toEqual({kind: 'throttled', status: 429, code: 'TooManyRequests', message: 'slow down', requestId: 'r-1', retryAfterMs: 2000});
		expect(classifyAnswer({...answer, retryAfter: new Date(now + 3000).toUTCString()}, now).retryAfterMs).toBe(3000);
		const long = classifyAnswer({kind: 'response', status: 400, code: 'c'.repeat(500), message: 'm'.repeat(5000)}, now);
		expect(long.code!.length).toBeLessThanOrEqual(103);
		expect(long.message.length).toBeLessThanOrEqual(503);
	});
});

describe('readSdkError and readBatchItem', () => {
	it('reads a GraphError with a response, and one without', () => {
		const headers = new Headers({'retry-after': '5'});
		expect(readSdkError({statusCode: 429, code: 'TooManyRequests', message: 'slow', requestId: 'r', headers})).toEqual({
			kind: 'response',
			status: 429,
			code: 'TooManyRequests',
			message: 'slow',
			requestId: 'r',
			retryAfter: '5',
		});
		expect(readSdkError({statusCode: -1, name: transportErrorNames.timeout, message: 'late'})).toEqual({kind: 'no-response', name: transportErrorNames.timeout, message: 'late'});
		expect(readSdkError('a string')).toEqual({kind: 'no-response', name: undefined, message: 'a string'});
	});

	it('reads a $batch item: its status, error body and own headers, whatever their case', () => {
		expect(readBatchItem({id: '1', status: 429, headers: {'Retry-After': 7}, body: {error: {code: 'TooMany', message: 'wait', innerError: {'request-id': 'inner'}}}})).toEqual({
			kind: 'response',
			status: 429,
			code: 'TooMany',
			message: 'wait',
			requestId: 'inner',
			retryAfter: '7',
		});
		expect(readBatchItem({status: 'x', headers: {'request-id': 'h'}})).toMatchObject({status: 0, requestId: 'h', code: undefined});
	});

	it('says a write may have been applied only when the answer never came', () => {
		expect(outcomeUnknown({kind: 'network', message: ''})).toBe(true);
		expect(outcomeUnknown({kind: 'timeout', message: ''})).toBe(true);
		expect(outcomeUnknown({kind: 'unreachable', message: ''})).toBe(false);
		expect(outcomeUnknown({kind: 'server', status: 500, message: ''})).toBe(false);
	});
});
