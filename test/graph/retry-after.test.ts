import {describe, expect, it} from 'vitest';
import {parseLimitPercentage, parseRetryAfter} from '../../src/graph/retry-after.js';

const now = Date.parse('2026-11-30T10:00:00Z');

describe('parseRetryAfter', () => {
	it.each([
		['whole seconds', '3', 3000],
		['decimal seconds', '2.128', 2128],
		['zero', '0', 0],
		['padded', ' 5 ', 5000],
		['an HTTP-date in the future', 'Mon, 30 Nov 2026 10:00:07 GMT', 7000],
		['an HTTP-date in the past', 'Mon, 30 Nov 2026 09:59:00 GMT', 0],
		['missing', undefined, undefined],
		['null', null, undefined],
		['empty', '', undefined],
		['negative', '-1', undefined],
		['garbage', 'soon', undefined],
		['a loose date that is not an HTTP-date', '2026-11-30', undefined],
		['absurdly many seconds, clamped to 5 minutes', '999999999', 300_000],
		['an HTTP-date a year away, clamped to 5 minutes', 'Tue, 30 Nov 2027 10:00:00 GMT', 300_000],
	])('%s (%s)', (_name, header, expected) => {
		expect(parseRetryAfter(header, now)).toBe(expected);
	});
});

describe('parseLimitPercentage', () => {
	it.each<[string | undefined, number | undefined]>([
		['0.8', 0.8],
		[' 1.25 ', 1.25],
		['85', 0.85],
		['180', 1.8],
		['0', undefined],
		['-1', undefined],
		['abc', undefined],
		['', undefined],
		[undefined, undefined],
		['1e9', undefined],
	])('%j: %j', (header, expected) => {
		expect(parseLimitPercentage(header)).toBe(expected);
	});
});
