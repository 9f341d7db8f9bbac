// Properties of the message contract: whatever arrives, the parser answers valid pairs or a reason, and never throws.

import {Buffer} from 'node:buffer';
import fc from 'fast-check';
import {describe, expect, it} from 'vitest';
import {parseMessage, type ParsedMessage} from '../../src/message/message.js';
import {checkPair, isCanonicalGuid, pairKey, pairTarget} from '../../src/pair/pair.js';

function checkInvariants(parsed: ParsedMessage): void {
	if (parsed.kind === 'invalid-message') {
		expect(parsed.reason.length).toBeGreaterThan(0);
		expect(typeof parsed.text).toBe('string');
		return;
	}

	expect(parsed.kind).toBe('pairs');
	expect(['add', 'remove']).toContain(parsed.action);
	expect(Number.isInteger(parsed.attempt) && parsed.attempt >= 0).toBe(true);
	for (const pair of parsed.pairs) {
		expect(isCanonicalGuid(pair.accessPackageId)).toBe(true);
		// Exactly one target, a canonical GUID; a package rule never names its own package.
		expect([pair.incompatibleAccessPackageId, pair.incompatibleGroupId].filter(id => id !== undefined)).toHaveLength(1);
		expect(isCanonicalGuid(pairTarget(pair))).toBe(true);
		expect(pair.accessPackageId).not.toBe(pair.incompatibleAccessPackageId);
	}

	expect(new Set(parsed.pairs.map(pair => pairKey(pair))).size).toBe(parsed.pairs.length);
	for (const invalid of parsed.invalidPairs) {
		expect(invalid.reason.length).toBeGreaterThan(0);
	}
}

const guid = fc.uuid().chain(id =>
	fc.constantFrom(id, id.toUpperCase(), `{${id}}`, ` ${id}\t`, id.replace('-', ''), `${id}/..`, `../${id}`, id.replace(/\d/, '٣')),
);
const pairLike = fc.oneof(
	fc.record({accessPackageId: guid, incompatibleAccessPackageId: guid}),
	fc.record({accessPackageId: fc.oneof(guid, fc.jsonValue()), incompatibleAccessPackageId: fc.oneof(guid, fc.jsonValue())}, {requiredKeys: []}),
	fc.record({accessPackageId: guid, incompatibleGroupId: guid}),
	fc.record(
		{accessPackageId: fc.oneof(guid, fc.jsonValue()), incompatibleAccessPackageId: fc.oneof(guid, fc.jsonValue()), incompatibleGroupId: fc.oneof(guid, fc.jsonValue())},
		{requiredKeys: []},
	),
	fc.jsonValue(),
);
const envelope = fc.record(
	{
		pairs: fc.oneof(fc.array(pairLike, {maxLength: 20}), fc.jsonValue()),
		action: fc.oneof(fc.constantFrom('add', 'remove'), fc.jsonValue()),
		symmetric: fc.oneof(fc.boolean(), fc.jsonValue()),
		correlationId: fc.oneof(fc.string(), fc.jsonValue()),
		attempt: fc.oneof(fc.nat(2000), fc.jsonValue()),
	},
	{requiredKeys: []},
);
const message = fc.oneof(pairLike, fc.array(pairLike, {maxLength: 20}), envelope, fc.record({specversion: fc.constant('1.0'), data: fc.oneof(envelope, fc.jsonValue())}, {requiredKeys: ['specversion']}));

describe('parseMessage, for any input', () => {
	it('never throws on any JSON value, given parsed, as text or as bytes', () => {
		fc.assert(
			fc.property(fc.oneof(fc.jsonValue(), message), value => {
				checkInvariants(parseMessage(value));
				checkInvariants(parseMessage(JSON.stringify(value) ?? 'null'));
				checkInvariants(parseMessage(Buffer.from(JSON.stringify(value) ?? 'null')));
			}),
			{numRuns: 500},
		);
	});

	it('never throws on arbitrary text or bytes', () => {
		fc.assert(
			fc.property(fc.oneof(fc.string(), fc.string({unit: 'binary'}), fc.uint8Array().map(bytes => Buffer.from(bytes))), value => {
				checkInvariants(parseMessage(value));
			}),
			{numRuns: 500},
		);
	});

	it('accepts every well-formed pair, in any case and with braces or white space, as the canonical GUIDs', () => {
		fc.assert(
			fc.property(fc.uuid(), fc.uuid(), fc.boolean(), (a, b, braces) => {
				fc.pre(a.toLowerCase() !== b.toLowerCase());
				const wrap = (id: string) => (braces ? `{${id.toUpperCase()}}` : ` ${id} `);
				const parsed = parseMessage({accessPackageId: wrap(a), incompatibleAccessPackageId: wrap(b)});
				expect(parsed).toMatchObject({kind: 'pairs', pairs: [{accessPackageId: a.toLowerCase(), incompatibleAccessPackageId: b.toLowerCase()}]});
			}),
			{numRuns: 300},
		);
	});

	it('keeps every pair it was given: each one is either accepted (once) or set aside with a reason', () => {
		fc.assert(
			fc.property(fc.array(pairLike, {maxLength: 30}), pairs => {
				const parsed = parseMessage({pairs});
				expect(parsed.kind).toBe('pairs');
				if (parsed.kind !== 'pairs') {
					return;
				}

				const checks = pairs.map(raw => checkPair(raw));
				const validKeys = new Set(checks.flatMap(check => (check.kind === 'valid' ? [pairKey(check.pair)] : [])));
				expect(parsed.invalidPairs.map(invalid => invalid.raw)).toEqual(pairs.filter((_, index) => checks[index]!.kind === 'invalid'));
				expect(new Set(parsed.pairs.map(pair => pairKey(pair)))).toEqual(validKeys);
			}),
			{numRuns: 300},
		);
	});
});
