// Hostile and broken input through the real queue path: Azurite -> the queue host (host.json semantics) -> the handler
// -> the simulator. Every case ends in correct links, or in a dead-letter or poison record with a precise reason; no
// crash loop; and Graph never sees an id that did not pass validation.

import {Buffer} from 'node:buffer';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {queueHostConfigFrom} from '../../src/config/host-config.js';
import {startAzurite, type RunningAzurite} from '../../src/local/azurite.js';
import {QueueHost} from '../../src/local/queue-host.js';
import {GraphSimulator} from '../../src/simulator/graph-simulator.js';
import {createPairsHandler} from '../../src/worker/pairs-handler.js';
import {countMessages, drainJson, queueService} from '../support/queues.js';
import {createTestWorker} from '../support/worker.js';

type Expectation =
	| {links: string[]; invalidPairs?: RegExp[]}
	| {invalidMessage: RegExp}
	| {poison: true};

interface Case {
	name: string;
	/** The message body, base64-encoded on the way in unless `raw`. */
	body: string;
	raw?: boolean;
	expect: (ids: string[]) => Expectation;
}

let azurite: RunningAzurite;
let simulator: GraphSimulator;

beforeAll(async () => {
	azurite = await startAzurite();
	simulator = await GraphSimulator.start({packageCount: 60, logRequests: true});
});

afterAll(async () => {
	await simulator.close();
	await azurite.stop();
});

const json = (value: unknown) => JSON.stringify(value);
const pair = (accessPackageId: unknown, incompatibleAccessPackageId: unknown) => ({accessPackageId, incompatibleAccessPackageId});
const link = (a: string, b: string) => `${a}/${b}`;

// Each case uses its own packages (ids[2k], ids[2k+1]), so the links it expects are its own.
const cases: Array<Omit<Case, 'expect'> & {expect: (a: string, b: string) => Expectation}> = [
	{name: 'malformed JSON', body: '{"pairs": [', expect: () => ({invalidMessage: /not valid JSON/})},
	{name: 'truncated base64', body: 'eyJwYWlycyI6Wy', raw: true, expect: () => ({poison: true})},
	{name: 'base64 of truncated JSON', body: 'eyJwYWlycyI6', raw: true, expect: () => ({invalidMessage: /not valid JSON/})},
	{name: 'not base64 at all', body: '*** not base64 ***', raw: true, expect: () => ({poison: true})},
	{name: 'an empty message', body: '', expect: () => ({invalidMessage: /the message is empty/})},
	{name: 'null', body: 'null', expect: () => ({invalidMessage: /got null/})},
	{name: 'a number', body: '42', expect: () => ({invalidMessage: /got 42/})},
	// As @azure/functions hands it over: a JSON string arrives as its inner text, which is not JSON.
	{name: 'a JSON string', body: '"link them all"', expect: () => ({invalidMessage: /not valid JSON/})},
	{name: 'true', body: 'true', expect: () => ({invalidMessage: /got true/})},
	{name: 'plain text', body: 'accessPackageId=1', expect: () => ({invalidMessage: /not valid JSON/})},
	{name: 'deeply nested arrays', body: `{"pairs": ${'['.repeat(2000)}${']'.repeat(2000)}}`, expect: () => ({invalidMessage: /JSON nested deeper than 32 levels/})},
	{name: 'a huge id near the 64 KiB limit', body: json({pairs: [pair('x'.repeat(46_000), 'y')]}), expect: () => ({links: [], invalidPairs: [/accessPackageId "x{80}\.\.\." is not a GUID/]})},
	{name: 'huge text near the 64 KiB limit', body: 'z'.repeat(47_000), expect: () => ({invalidMessage: /not valid JSON/})},
	{name: 'an id as a number', body: json(pair(123, 'x')), expect: () => ({links: [], invalidPairs: [/accessPackageId must be a string, got number "123"/]})},
	{name: 'an id as an array', body: '', expect: () => ({links: [], invalidPairs: [/accessPackageId must be a string, got an array/]})},
	{name: 'an id as an object', body: '', expect: () => ({links: [], invalidPairs: [/accessPackageId must be a string, got an object/]})},
	{name: 'extra fields are ignored', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'an id supplied through __proto__', body: '', expect: () => ({links: [], invalidPairs: [/accessPackageId is missing/]})},
	{name: 'a constructor key', body: '', expect: () => ({invalidMessage: /keys "constructor"/})},
	{name: 'pairs hidden under __proto__', body: '', expect: () => ({invalidMessage: /keys "__proto__"/})},
	{name: 'path traversal', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'a URL-encoded slash', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'a query string', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'a fragment', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'an OData injection', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'GUIDs in braces', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'GUIDs in upper case', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'GUIDs with white space around', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'a GUID with a space inside', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'Arabic-Indic digits', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'fullwidth digits', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'a zero-width space', body: '', expect: () => ({links: [], invalidPairs: [/is not a GUID/]})},
	{name: 'a self-pair differing only in case', body: '', expect: () => ({links: [], invalidPairs: [/cannot be incompatible with itself/]})},
	{name: 'null ids', body: '', expect: () => ({links: [], invalidPairs: [/accessPackageId is missing/]})},
	{name: 'duplicates inside a message', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'a mixed array', body: '', expect: (a, b) => ({links: [link(a, b)], invalidPairs: [/got number "1"/, /got null/]})},
	{name: 'an unknown action', body: '', expect: () => ({invalidMessage: /"action" must be "add" or "remove", got "delete"/})},
	{name: 'a negative attempt', body: '', expect: () => ({invalidMessage: /"attempt" must be a whole number/})},
	{name: 'an attempt as text', body: '', expect: () => ({invalidMessage: /"attempt" must be a whole number/})},
	{name: 'symmetric as text', body: '', expect: () => ({invalidMessage: /"symmetric" must be true or false/})},
	{name: 'an over-long correlation id', body: '', expect: () => ({invalidMessage: /"correlationId" must be a string of 1 to 256 characters/})},
	{name: 'pairs as an object', body: '', expect: () => ({invalidMessage: /"pairs" must be an array/})},
	{name: 'an empty list of pairs', body: '', expect: () => ({links: []})},
	{name: 'a CloudEvent without data', body: '', expect: () => ({invalidMessage: /CloudEvent has no data/})},
	{name: 'a CloudEvent with data_base64', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'an Event Grid event', body: '', expect: (a, b) => ({links: [link(b, a)]})},
	{name: 'an Event Grid event with null data', body: '', expect: () => ({invalidMessage: /Event Grid event has no data/})},
	{name: 'a byte-order mark before the JSON', body: '', expect: (a, b) => ({links: [link(a, b)]})},
	{name: 'a symmetric envelope', body: '', expect: (a, b) => ({links: [link(a, b), link(b, a)]})},
];

/** Bodies that need the case's own package ids. */
function bodyFor(name: string, a: string, b: string): string | undefined {
	const bodies: Record<string, unknown> = {
		'an id as an array': pair([a], b),
		'an id as an object': pair({id: a}, b),
		'extra fields are ignored': {...pair(a, b), note: 'x', priority: 3},
		'an id supplied through __proto__': undefined,
		'path traversal': pair(`../${a}`, b),
		'a URL-encoded slash': pair(`${a}%2F..%2F${b}`, b),
		'a query string': pair(`${a}?$select=id`, b),
		'a fragment': pair(`${a}#x`, b),
		'an OData injection': pair(`${a}' or 1 eq 1`, b),
		'GUIDs in braces': pair(`{${a}}`, `{${b}}`),
		'GUIDs in upper case': pair(a.toUpperCase(), b.toUpperCase()),
		'GUIDs with white space around': pair(` ${a}\t`, `\n${b} `),
		'a GUID with a space inside': pair(`${a.slice(0, 4)} ${a.slice(5)}`, b),
		'Arabic-Indic digits': pair(a.replaceAll(/\d/g, digit => String.fromCodePoint(0x06_60 + Number(digit))), b),
		'fullwidth digits': pair(a.replaceAll(/\d/g, digit => String.fromCodePoint(0xff_10 + Number(digit))), b),
		'a zero-width space': pair(`${a.slice(0, 8)}\u200B${a.slice(8)}`, b),
		'a self-pair differing only in case': pair(a, a.toUpperCase()),
		'null ids': pair(null, null),
		'duplicates inside a message': {pairs: [pair(a, b), pair(a.toUpperCase(), b), pair(`{${a}}`, b)]},
		'a mixed array': [pair(a, b), 1, null],
		'an unknown action': {pairs: [pair(a, b)], action: 'delete'},
		'a negative attempt': {pairs: [pair(a, b)], attempt: -1},
		'an attempt as text': {pairs: [pair(a, b)], attempt: '1'},
		'symmetric as text': {pairs: [pair(a, b)], symmetric: 'true'},
		'an over-long correlation id': {pairs: [pair(a, b)], correlationId: 'c'.repeat(300)},
		'pairs as an object': {pairs: {0: pair(a, b)}},
		'an empty list of pairs': {pairs: []},
		'a CloudEvent without data': {specversion: '1.0', id: '1', source: '/x', type: 't'},
		'a CloudEvent with data_base64': {specversion: '1.0', id: '1', source: '/x', type: 't', data_base64: Buffer.from(json([pair(a, b)])).toString('base64')},
		'an Event Grid event': {id: '1', eventType: 'rules', subject: 's', dataVersion: '1', eventTime: '2026-11-30T00:00:00Z', data: {pairs: [pair(b, a)]}},
		'an Event Grid event with null data': {id: '1', eventType: 'rules', subject: 's', dataVersion: '1', data: null},
		'a symmetric envelope': {pairs: [pair(a, b)], symmetric: true},
	};
	if (name === 'an id supplied through __proto__') {
		return `{"__proto__": {"accessPackageId": "${a}"}, "incompatibleAccessPackageId": "${b}"}`;
	}

	if (name === 'a constructor key') {
		return `{"constructor": {"accessPackageId": "${a}", "incompatibleAccessPackageId": "${b}"}}`;
	}

	if (name === 'pairs hidden under __proto__') {
		return `{"__proto__": {"pairs": [{"accessPackageId": "${a}", "incompatibleAccessPackageId": "${b}"}]}}`;
	}

	if (name === 'a byte-order mark before the JSON') {
		return `\uFEFF${json(pair(a, b))}`;
	}

	return name in bodies ? json(bodies[name]) : undefined;
}

describe('hostile and broken input through the queue', () => {
	it(`handles ${cases.length} cases: links, dead letters or poison, each with its precise reason`, async () => {
		expect(cases.length).toBeGreaterThanOrEqual(40);
		const worker = createTestWorker(simulator, azurite.connectionString);
		const service = queueService(azurite.connectionString);
		const queue = service.getQueueClient(worker.settings.queueName);
		const poisonQueue = service.getQueueClient(`${worker.settings.queueName}-poison`);
		await queue.create();
		const ids = simulator.packageIds;
		const sent: Array<{name: string; messageId: string; expectation: Expectation; text: string}> = [];
		for (const [index, testCase] of cases.entries()) {
			const [a, b] = [ids[2 * index % ids.length]!, ids[(2 * index + 1) % ids.length]!];
			const text = bodyFor(testCase.name, a, b) ?? testCase.body;
			const wire = testCase.raw ? text : Buffer.from(text).toString('base64');
			// eslint-disable-next-line no-await-in-loop
			const {messageId} = await queue.sendMessage(wire);
			sent.push({name: testCase.name, messageId, expectation: testCase.expect(a, b), text: wire});
		}

		const host = new QueueHost({
			queue,
			poisonQueue,
			config: queueHostConfigFrom({batchSize: 16, newBatchThreshold: 8, maxDequeueCount: 2, visibilityTimeout: '00:00:01', maxPollingInterval: '00:00:01'}),
			handler: createPairsHandler(worker.dependencies),
			leaseSeconds: 10,
		});
		const counts = await host.run({untilEmpty: true});
		const records = await drainJson<DeadLetterRecord>(worker.deadLetterQueue);
		const {receivedMessageItems: poisoned} = await poisonQueue.receiveMessages({numberOfMessages: 32});
		const links = new Set(simulator.allLinks());

		// No crash loop: nothing failed but the undecodable messages, each poisoned on its first delivery.
		const poisonCases = sent.filter(item => 'poison' in item.expectation);
		expect(counts).toEqual({completed: cases.length - poisonCases.length, failed: poisonCases.length, poisoned: poisonCases.length});
		expect(poisoned.map(item => item.messageText).sort()).toEqual(poisonCases.map(item => item.text).sort());
		expect(await countMessages(queue)).toBe(0);

		const expectedLinks = new Set<string>();
		for (const item of sent) {
			const mine = records.filter(record => record.sourceMessageId === item.messageId);
			const {expectation} = item;
			if ('invalidMessage' in expectation) {
				expect(mine, item.name).toHaveLength(1);
				expect(mine[0], item.name).toMatchObject({reason: 'invalid-message', pair: null});
				expect(mine[0]!.error.message, item.name).toMatch(expectation.invalidMessage);
				expect(JSON.stringify(mine[0]).length, item.name).toBeLessThan(48 * 1024);
			} else if ('links' in expectation) {
				expect(mine.map(record => record.reason), item.name).toEqual((expectation.invalidPairs ?? []).map(() => 'invalid-pair'));
				// Records are written concurrently, so their order on the queue is not the pairs' order: match each reason once.
				const messages = mine.map(record => record.error.message);
				for (const reason of expectation.invalidPairs ?? []) {
					const index = messages.findIndex(message => reason.test(message));
					expect(index, `${item.name}: ${String(reason)} in ${JSON.stringify(messages)}`).toBeGreaterThanOrEqual(0);
					messages.splice(index, 1);
				}

				for (const expected of expectation.links) {
					expectedLinks.add(expected);
					expect(links.has(expected), `${item.name}: ${expected}`).toBe(true);
				}
			} else {
				expect(mine, item.name).toEqual([]);
			}
		}

		expect([...links].sort()).toEqual([...expectedLinks].sort());
		// Graph saw only canonical ids, on known routes.
		const guid = '[\\da-f]{8}-[\\da-f]{4}-[\\da-f]{4}-[\\da-f]{4}-[\\da-f]{12}';
		const route = new RegExp(`^(POST /v1\\.0/identityGovernance/entitlementManagement/accessPackages/${guid}/incompatibleAccessPackages/\\$ref|GET /v1\\.0/identityGovernance/entitlementManagement/accessPackages/${guid}/incompatibleAccessPackages\\?\\$select=id)$`);
		expect(simulator.stats.log.filter(line => !route.test(line))).toEqual([]);
		expect(simulator.stats.unmatched).toEqual([]);
		// "duplicates inside a message" reached Graph once.
		const duplicated = sent.find(item => item.name === 'duplicates inside a message')!;
		const [duplicateLink] = (duplicated.expectation as {links: string[]}).links;
		const [from] = duplicateLink!.split('/');
		expect(simulator.stats.log.filter(line => line.startsWith(`POST /v1.0/identityGovernance/entitlementManagement/accessPackages/${from}/`))).toHaveLength(1);
	});
});
