import {Buffer} from 'node:buffer';
import {describe, expect, it} from 'vitest';
import {encodedSize, maximumEncodedMessageBytes, packPairs, parseMessage} from '../../src/message/message.js';

const a = 'c0a74b4d-2694-4d5d-a964-1bee4ff0aaf2';
const b = '4f1c2a3b-1111-4d5d-a964-1bee4ff0aaf3';
const c = '9e8d7c6b-2222-4d5d-a964-1bee4ff0aaf4';
const pair = {accessPackageId: a, incompatibleAccessPackageId: b};

function pairsOf(item: unknown) {
	const parsed = parseMessage(item);
	if (parsed.kind !== 'pairs') {
		throw new Error(`expected pairs, got: ${parsed.reason}`);
	}

	return parsed;
}

function reasonOf(item: unknown): string {
	const parsed = parseMessage(item);
	if (parsed.kind !== 'invalid-message') {
		throw new Error('expected an invalid message');
	}

	return parsed.reason;
}

describe('parseMessage: accepted forms', () => {
	const forms: Array<[string, unknown]> = [
		['one pair (parsed)', pair],
		['one pair (string)', JSON.stringify(pair)],
		['one pair (Buffer)', Buffer.from(JSON.stringify(pair))],
		['an array of pairs', [pair]],
		['an envelope', {pairs: [pair], action: 'add', symmetric: false, correlationId: 'import-1', attempt: 0}],
		['a CloudEvent', {specversion: '1.0', type: 'sod.pairs', source: '/x', id: '1', data: {pairs: [pair]}}],
		['a CloudEvent with data_base64', {specversion: '1.0', type: 't', source: 's', id: '1', data_base64: Buffer.from(JSON.stringify([pair])).toString('base64')}],
		['an Event Grid event', {id: '1', eventType: 'sod.pairs', subject: 's', eventTime: '2026-01-01T00:00:00Z', dataVersion: '1', data: pair}],
		['an Event Grid event as text', JSON.stringify({id: '1', eventType: 't', subject: 's', dataVersion: '1', data: JSON.stringify([pair])})],
	];
	it.each(forms)('%s', (_name, item) => {
		const parsed = pairsOf(item);
		expect(parsed.pairs).toEqual([pair]);
		expect(parsed.invalidPairs).toEqual([]);
		expect(parsed.action).toBe('add');
	});

	it('reads the envelope fields', () => {
		const parsed = pairsOf({pairs: [pair], action: 'remove', correlationId: 'c-1', attempt: 3});
		expect(parsed).toMatchObject({action: 'remove', correlationId: 'c-1', attempt: 3});
	});

	it('normalises case, braces and surrounding white space', () => {
		const parsed = pairsOf({accessPackageId: ` {${a.toUpperCase()}} `, incompatibleAccessPackageId: `\t${b}\n`});
		expect(parsed.pairs).toEqual([pair]);
	});

	it('expands symmetric pairs and processes duplicates once', () => {
		const parsed = pairsOf({pairs: [pair, pair, {accessPackageId: b, incompatibleAccessPackageId: a}, {accessPackageId: a.toUpperCase(), incompatibleAccessPackageId: c}], symmetric: true});
		expect(parsed.pairs).toEqual([
			pair,
			{accessPackageId: b, incompatibleAccessPackageId: a},
			{accessPackageId: a, incompatibleAccessPackageId: c},
			{accessPackageId: c, incompatibleAccessPackageId: a},
		]);
	});

	it('accepts an empty list of pairs as nothing to do', () => {
		expect(pairsOf({pairs: []}).pairs).toEqual([]);
	});
});

describe('parseMessage: invalid pairs are set aside with a reason, the rest go on', () => {
	const cases: Array<[string, unknown, RegExp]> = [
		['a non-GUID id', {accessPackageId: 'not-a-guid', incompatibleAccessPackageId: b}, /accessPackageId "not-a-guid" is not a GUID/],
		['a self-pair', {accessPackageId: a, incompatibleAccessPackageId: a.toUpperCase()}, /cannot be incompatible with itself/],
		['a missing id', {accessPackageId: a}, /incompatibleAccessPackageId \(or incompatibleGroupId\) is missing/],
		['a number id', {accessPackageId: a, incompatibleAccessPackageId: 42}, /must be a string, got number/],
		['a path traversal', {accessPackageId: `../${a}`, incompatibleAccessPackageId: b}, /is not a GUID/],
		['a URL-encoded slash', {accessPackageId: `${a}%2F..`, incompatibleAccessPackageId: b}, /is not a GUID/],
		['Arabic-Indic digits', {accessPackageId: a.replace('0', '٠'), incompatibleAccessPackageId: b}, /is not a GUID/],
		['a string, not an object', 'x', /must be an object/],
		['an id inherited through __proto__', JSON.parse(`{"__proto__": {"accessPackageId": "${a}"}, "incompatibleAccessPackageId": "${b}"}`), /accessPackageId is missing/],
		['both targets', {accessPackageId: a, incompatibleAccessPackageId: b, incompatibleGroupId: c}, /names incompatibleAccessPackageId or incompatibleGroupId, not both/],
		['a group id that is not a GUID', {accessPackageId: a, incompatibleGroupId: 'sales team'}, /incompatibleGroupId "sales team" is not a GUID/],
	];
	it.each(cases)('%s', (_name, raw, reason) => {
		const parsed = pairsOf({pairs: [raw, pair]});
		expect(parsed.pairs).toEqual([pair]);
		expect(parsed.invalidPairs).toHaveLength(1);
		expect(parsed.invalidPairs[0]!.raw).toEqual(raw);
		expect(parsed.invalidPairs[0]!.reason).toMatch(reason);
	});
});

describe('parseMessage: group rules', () => {
	it('reads a group rule beside package rules, normalised; a package and a group may share an id without being one pair', () => {
		const parsed = pairsOf({pairs: [{accessPackageId: a, incompatibleGroupId: `{${b.toUpperCase()}}`}, pair, {accessPackageId: a, incompatibleGroupId: b}]});
		expect(parsed.pairs).toEqual([{accessPackageId: a, incompatibleGroupId: b}, pair]);
		expect(parsed.invalidPairs).toEqual([]);
	});

	it('sets a group rule aside when the envelope says symmetric (a group has no list to link back from), and links the package rules both ways', () => {
		const group = {accessPackageId: a, incompatibleGroupId: c};
		const parsed = pairsOf({pairs: [group, pair], symmetric: true});
		expect(parsed.pairs).toEqual([pair, {accessPackageId: b, incompatibleAccessPackageId: a}]);
		expect(parsed.invalidPairs).toEqual([{raw: group, reason: expect.stringMatching(/^symmetric applies to package rules only/)}]);
	});

	it('packs group rules under their own field name, so that the worker reads back what was packed', () => {
		const group = {accessPackageId: a, incompatibleGroupId: c};
		const [text, ...rest] = [...packPairs([group, pair], {action: 'add'}, 'none')];
		expect(rest).toEqual([]);
		expect(JSON.parse(text!).pairs).toEqual([group, pair]);
		expect(pairsOf(JSON.parse(text!)).pairs).toEqual([group, pair]);
	});
});

describe('parseMessage: unusable messages are rejected whole, with the reason in words', () => {
	const cases: Array<[string, unknown, RegExp]> = [
		['malformed JSON', '{"pairs": [', /not valid JSON/],
		['an empty string', '', /empty/],
		['null', null, /got null/],
		['a number', 42, /got 42/],
		['an object of the wrong shape', {foo: 1}, /keys "foo"/],
		['pairs that is not an array', {pairs: 'x'}, /"pairs" must be an array/],
		['an unknown action', {pairs: [pair], action: 'link'}, /"action" must be "add" or "remove", got "link"/],
		['a non-boolean symmetric', {pairs: [pair], symmetric: 'yes'}, /"symmetric" must be true or false/],
		['a negative attempt', {pairs: [pair], attempt: -1}, /"attempt" must be a whole number/],
		['a CloudEvent without data', {specversion: '1.0', type: 't', source: 's', id: '1'}, /CloudEvent has no data/],
		[
			'a CloudEvent whose data is a string holding JSON (it must not be parsed again)',
			{specversion: '1.0', type: 't', source: 's', id: '1', datacontenttype: 'application/json', data: '{"pairs":[]}'},
			/CloudEvent data is a string \(datacontenttype "application\/json"\); send the pairs message as a JSON object or array in "data"/,
		],
		['a CloudEvent whose data is a string, with no datacontenttype', {specversion: '1.0', type: 't', source: 's', id: '1', data: '[]'}, /CloudEvent data is a string \(datacontenttype "none"\)/],
		['a CloudEvent with both data and data_base64', {specversion: '1.0', type: 't', source: 's', id: '1', data: [], data_base64: 'W10='}, /both data and data_base64/],
		['an Event Grid event with bad data text', {eventType: 't', dataVersion: '1', data: '{oops'}, /Event Grid event data: not valid JSON/],
	];
	it.each(cases)('%s', (_name, item, reason) => {
		expect(reasonOf(item)).toMatch(reason);
	});

	it('keeps the raw text for the dead-letter record', () => {
		const parsed = parseMessage('{"pairs": [');
		expect(parsed).toMatchObject({kind: 'invalid-message', text: '{"pairs": ['});
	});
});

describe('packPairs', () => {
	const many = Array.from({length: 3000}, (_, index) => ({
		accessPackageId: a,
		incompatibleAccessPackageId: `${index.toString(16).padStart(8, '0')}-2694-4d5d-a964-1bee4ff0aaf2`,
	}));

	it.each(['base64', 'none'] as const)('fits every message under 64 KiB after %s encoding, losing nothing, in order', encoding => {
		const messages = [...packPairs(many, {action: 'add', correlationId: 'x', attempt: 1}, encoding)];
		expect(messages.length).toBeGreaterThan(1);
		for (const text of messages) {
			expect(encodedSize(text, encoding)).toBeLessThanOrEqual(maximumEncodedMessageBytes);
		}

		const unpacked = messages.flatMap(text => pairsOf(text).pairs);
		expect(unpacked).toEqual(many);
		expect(pairsOf(messages[0]).attempt).toBe(1);
	});

	it('packs as tightly as fits: one more pair would not', () => {
		const [first] = packPairs(many, {action: 'add'}, 'base64');
		const count = pairsOf(first).pairs.length;
		const [bigger] = packPairs(many.slice(0, count + 1), {action: 'add'}, 'base64', Number.MAX_SAFE_INTEGER);
		expect(encodedSize(bigger!, 'base64')).toBeGreaterThan(maximumEncodedMessageBytes);
	});
});
