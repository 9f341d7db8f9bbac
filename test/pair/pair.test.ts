import {describe, expect, it} from 'vitest';
import {checkPair, makePair, normalizeGuid, pairFields, pairKey, pairKind, pairTarget, pairText, quote, reversePair} from '../../src/pair/pair.js';

const a = 'c0a74b4d-2694-4d5d-a964-1bee4ff0aaf2';
const b = '0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d';

describe('normalizeGuid', () => {
	it.each([
		[` {${a.toUpperCase()}} `, a],
		[`\t${a}\r\n`, a],
		[a.toUpperCase(), a],
	])('accepts %j as %s', (input, expected) => {
		expect(normalizeGuid(input)).toBe(expected);
	});

	it.each([
		['not a guid'],
		[`{{${a}}}`],
		[`${a}/../x`],
		[a.replace('c', '%63')],
		[a.replace('0', '\u0660')],
		[`\u00a0${a}`],
		[''],
	])('refuses %j', input => {
		expect(normalizeGuid(input)).toBeUndefined();
	});
});

describe('checkPair', () => {
	it('returns a package pair or a group pair, normalised', () => {
		expect(checkPair({accessPackageId: a.toUpperCase(), incompatibleAccessPackageId: `{${b}}`})).toEqual({kind: 'valid', pair: {accessPackageId: a, incompatibleAccessPackageId: b}});
		expect(checkPair({accessPackageId: a, incompatibleGroupId: b, incompatibleAccessPackageId: ''})).toEqual({kind: 'valid', pair: {accessPackageId: a, incompatibleGroupId: b}});
	});

	it.each([
		[null, 'a pair must be an object with accessPackageId and incompatibleAccessPackageId (or incompatibleGroupId), got null'],
		[[a, b], 'a pair must be an object with accessPackageId and incompatibleAccessPackageId (or incompatibleGroupId), got an array'],
		[{accessPackageId: a, incompatibleAccessPackageId: b, incompatibleGroupId: b}, 'a pair names incompatibleAccessPackageId or incompatibleGroupId, not both'],
		[{incompatibleAccessPackageId: b}, 'accessPackageId is missing'],
		[{accessPackageId: a}, 'incompatibleAccessPackageId (or incompatibleGroupId) is missing'],
		[{accessPackageId: a, incompatibleGroupId: 42}, 'incompatibleGroupId must be a string, got number "42"'],
		[{accessPackageId: 'x'.repeat(200), incompatibleAccessPackageId: b}, `accessPackageId "${'x'.repeat(80)}..." is not a GUID`],
		[{accessPackageId: a, incompatibleAccessPackageId: a.toUpperCase()}, `an access package cannot be incompatible with itself (${a})`],
	])('refuses %j: %s', (raw, reason) => {
		expect(checkPair(raw)).toEqual({kind: 'invalid', reason});
	});

	it('reads own properties only: an id on the prototype does not count', () => {
		const raw = Object.create({accessPackageId: a}) as Record<string, unknown>;
		raw.incompatibleAccessPackageId = b;
		expect(checkPair(raw)).toEqual({kind: 'invalid', reason: 'accessPackageId is missing'});
	});

	it('lets a package be incompatible with a group that shares its GUID (they are different objects)', () => {
		expect(checkPair({accessPackageId: a, incompatibleGroupId: a})).toEqual({kind: 'valid', pair: {accessPackageId: a, incompatibleGroupId: a}});
	});
});

describe('a pair by kind', () => {
	const packageRule = makePair('package', a, b);
	const groupRule = makePair('group', a, b);

	it('keys, names and writes each kind apart', () => {
		expect([pairKind(packageRule), pairKind(groupRule)]).toEqual(['package', 'group']);
		expect([pairTarget(packageRule), pairTarget(groupRule)]).toEqual([b, b]);
		expect([pairKey(packageRule), pairKey(groupRule)]).toEqual([`${a}/${b}`, `${a}/group/${b}`]);
		expect(pairFields(groupRule)).toEqual({accessPackageId: a, incompatibleGroupId: b});
		expect(pairText(packageRule)).toBe(`${a} -> ${b}`);
		expect(pairText(groupRule)).toBe(`${a} -> group ${b}`);
	});

	it('reverses a package rule', () => {
		expect(reversePair({accessPackageId: a, incompatibleAccessPackageId: b})).toEqual({accessPackageId: b, incompatibleAccessPackageId: a});
	});

	it('escapes what it prints: a hostile id cannot forge a log line', () => {
		expect(pairText({accessPackageId: 'x\nERROR forged', incompatibleAccessPackageId: b})).not.toContain('\n');
		expect(quote('y'.repeat(100), 10)).toBe(`"${'y'.repeat(10)}..."`);
	});
});
