import {describe, expect, it} from 'vitest';
import {jsonTextTooDeep, stringifyWithoutRecursion, valueTooDeep} from '../../src/message/json-depth.js';

describe('json-depth', () => {
	it.each([
		['[[1]]', 2, false],
		['[[[1]]]', 2, true],
		['{"a":{"b":[]}}', 3, false],
		['{"a":{"b":[{}]}}', 3, true],
		['"[[[[[[[[[[ inside a string \\" ]]]"', 1, false],
	])('jsonTextTooDeep(%s, %i) is %s', (text, maximum, expected) => {
		expect(jsonTextTooDeep(text, maximum)).toBe(expected);
		expect(valueTooDeep(JSON.parse(text), maximum)).toBe(expected);
	});

	it('writes what JSON.stringify writes, at any depth', () => {
		for (const value of [1, 'a"b\u0001', null, [], {}, [1, [2, {a: [3, {}]}]], {x: 'y', z: [true, false, null], u: undefined}, JSON.parse('{"n":12345678901234567890}')]) {
			expect(stringifyWithoutRecursion(value)).toBe(JSON.stringify(value));
		}

		const deep = JSON.parse(`${'['.repeat(20_000)}${']'.repeat(20_000)}`) as unknown;
		expect(() => JSON.stringify(deep)).toThrow(RangeError);
		expect(stringifyWithoutRecursion(deep)).toBe(`${'['.repeat(20_000)}${']'.repeat(20_000)}`);
	});
});
