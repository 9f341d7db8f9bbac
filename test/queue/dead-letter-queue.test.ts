// The dead-letter queue's scan, list and redrive against Azurite: each record once however long a scan takes, records
// sod-sync did not write shown and left alone, and a raw message that several records name replayed once.

import {BlobServiceClient} from '@azure/storage-blob';
import {describe, expect, it} from 'vitest';
import {errorInWords, failureRecord, type DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {DeadLetterScan, listDeadLetters, redriveDeadLetters} from '../../src/queue/dead-letter-queue.js';
import {encodeMessage} from '../../src/queue/storage-queue.js';
import {BlobRawMessageStore} from '../../src/storage/raw-message-store.js';
import {runInProcess} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {countMessages, drainJson, drainQueue} from '../support/queues.js';

const local = useLocalStack({blob: true});

const context = {action: 'add' as const, attempts: 1, correlationId: 'import-9', sourceMessageId: 'm-1', at: new Date('2026-12-01T00:00:00Z')};
const notFound = (a: string, b: string): DeadLetterRecord =>
	failureRecord('not-found', {accessPackageId: a, incompatibleAccessPackageId: b}, {status: 404, code: 'ResourceNotFound', message: 'gone', requestId: null}, context);
const guid = (index: number) => `00000000-0000-4000-8000-${index.toString(16).padStart(12, '0')}`;

async function put(queue: {sendMessage: (text: string) => Promise<unknown>}, texts: readonly string[]) {
	for (let index = 0; index < texts.length; index += 50) {
		// eslint-disable-next-line no-await-in-loop
		await Promise.all(texts.slice(index, index + 50).map(async text => queue.sendMessage(encodeMessage(text, 'base64'))));
	}
}

describe('DeadLetterScan', () => {
	it('sees each record once when the scan outlasts its hold, and leaves the queue as it was', async () => {
		const {deadLetterQueue} = await local.startQueues({packageCount: 1});
		await deadLetterQueue.create();
		await put(deadLetterQueue, Array.from({length: 200}, (_, index) => JSON.stringify(notFound(guid(1), guid(index + 2)))));
		const scan = new DeadLetterScan(deadLetterQueue, 'base64', {holdSeconds: 1});
		const seen: string[] = [];
		for await (const message of scan.messages()) {
			seen.push(message.messageId);
			// Slow enough that the first records come back before the scan ends (the hold is 1 s).
			await new Promise(resolve => setTimeout(resolve, 15));
		}

		await scan.release();
		expect(seen).toHaveLength(200);
		expect(new Set(seen).size).toBe(200);
		expect(scan.stats.returnedEarly).toBeGreaterThan(0); // The hold did run out: the case under test happened.
		expect(scan.stats.holdSeconds).toBeGreaterThan(1);
		expect(scan.stats.receives).toBeLessThan(40);
		expect(await countMessages(deadLetterQueue)).toBe(200);
		expect(await drainQueue(deadLetterQueue)).toHaveLength(200); // All visible again at once.
	}, 60_000);
});

describe('dead-letters list and redrive with records sod-sync did not write', () => {
	const foreign = [
		['a record without error', JSON.stringify({reason: 'not-found', pair: {accessPackageId: guid(1), incompatibleAccessPackageId: guid(2)}})],
		['an invalid-message record whose message is a number', JSON.stringify({...failureRecord('invalid-message', null, errorInWords('not JSON'), context), message: 12345})],
		['invalidPairs holding null', JSON.stringify({...failureRecord('invalid-pair', null, errorInWords('bad'), context), invalidPairs: [null]})],
		['a reason sod-sync never writes', JSON.stringify({...notFound(guid(1), guid(2)), reason: 'oops'})],
		['text that is not JSON', 'hello'],
	] as const;

	it('list shows each as unreadable, with why, lists the rest, and exits 3', async () => {
		const {deadLetterQueue, environment} = await local.startQueues({packageCount: 1});
		await deadLetterQueue.create();
		await put(deadLetterQueue, [...foreign.map(([, text]) => text), JSON.stringify(notFound(guid(7), guid(8)))]);
		const result = await runInProcess(['dead-letters', 'list'], environment);
		expect(result.code, result.stderr).toBe(3);
		expect(result.stdout).toMatch(/^6 dead letters on /);
		expect(result.stdout).toMatch(/unreadable \(5\)/);
		expect(result.stdout).toMatch(/unreadable, left on the queue: not a dead-letter record: "error" must be an object with a message/);
		expect(result.stdout).toMatch(/"message" must be a string or null/);
		expect(result.stdout).toMatch(/"invalidPairs" must be a list of \{pair, reason\} or null/);
		expect(result.stdout).toMatch(/"reason" must be one of invalid-message, /);
		expect(result.stdout).toMatch(/unreadable, left on the queue: not JSON/);
		expect(result.stdout).toContain(`${guid(7)} -> ${guid(8)}`);
		expect(await countMessages(deadLetterQueue)).toBe(6);
	});

	it('redrive leaves each where it is, sends back the rest, and exits 3 naming what it left', async () => {
		const {deadLetterQueue, pairsQueue, environment} = await local.startQueues({packageCount: 1});
		await deadLetterQueue.create();
		await put(deadLetterQueue, [...foreign.map(([, text]) => text), JSON.stringify(notFound(guid(7), guid(8)))]);
		const result = await runInProcess(['dead-letters', 'redrive', '--reason', 'not-found', '--reason', 'invalid-message', '--reason', 'invalid-pair'], environment);
		expect(result.code, result.stderr).toBe(3);
		expect(result.stdout).toMatch(/redrove 1 records .* in 1 messages; 5 left on /);
		expect(result.stderr).toMatch(/^5 records could not be redriven and were left on the queue:\n/);
		expect(result.stderr.match(/: unreadable: /g)).toHaveLength(5);
		const [sent] = await drainJson<{pairs: unknown[]}>(pairsQueue);
		expect(sent?.pairs).toEqual([{accessPackageId: guid(7), incompatibleAccessPackageId: guid(8)}]);
		const left = await drainQueue(deadLetterQueue);
		expect(left.sort()).toEqual(foreign.map(([, text]) => text).sort());
	});
});

describe('redrive of a raw message kept in a blob', () => {
	async function blobStore() {
		const service = BlobServiceClient.fromConnectionString(local.azurite.connectionString);
		const container = service.getContainerClient('sod-sync-dead-letters');
		return {container, store: new BlobRawMessageStore(container)};
	}

	it('sends a message that two records share (it was delivered twice) once, removes both records, then the blob', async () => {
		const {deadLetterQueue, pairsQueue, environment} = await local.startQueues({packageCount: 1});
		const {container, store} = await blobStore();
		const text = `not json ${'x'.repeat(100)}`;
		const reference = await store.save(text, 'm-twice');
		const record = {...failureRecord('invalid-message', null, errorInWords('not JSON'), context), messageBlob: reference};
		await deadLetterQueue.create();
		await put(deadLetterQueue, [JSON.stringify(record), JSON.stringify({...record, deadLetteredAt: '2026-12-01T00:00:05.000Z'})]);
		const result = await runInProcess(['dead-letters', 'redrive', '--reason', 'invalid-message'], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/redrove 2 records .* in 1 messages; 0 left/);
		expect(await drainQueue(pairsQueue)).toEqual([text]);
		expect(await countMessages(deadLetterQueue)).toBe(0);
		expect(await container.getBlobClient(reference.split('/')[1]!).exists()).toBe(false);
	});

	it('leaves a record whose blob is gone, naming it, and goes on with the others', async () => {
		const {deadLetterQueue, pairsQueue, environment} = await local.startQueues({packageCount: 1});
		const {store} = await blobStore();
		const kept = await store.save('still here', 'm-kept');
		const gone = 'sod-sync-dead-letters/m-gone-0123.txt';
		await deadLetterQueue.create();
		await put(deadLetterQueue, [
			JSON.stringify({...failureRecord('invalid-message', null, errorInWords('not JSON'), context), messageBlob: gone}),
			JSON.stringify({...failureRecord('invalid-message', null, errorInWords('not JSON'), context), messageBlob: kept}),
		]);
		const first = await runInProcess(['dead-letters', 'redrive', '--reason', 'invalid-message'], environment);
		expect(first.code, first.stderr).toBe(3);
		expect(first.stderr).toMatch(/its raw message blob sod-sync-dead-letters\/m-gone-0123\.txt cannot be read \(404/);
		expect(await drainQueue(pairsQueue)).toEqual(['still here']);
		// The record stays, and a second run says the same, never "redrive stopped".
		expect(await countMessages(deadLetterQueue)).toBe(1);
		const second = await runInProcess(['dead-letters', 'redrive', '--reason', 'invalid-message'], environment);
		expect(second.code).toBe(3);
		expect(second.stdout).toMatch(/redrove 0 records .* 1 left/);
	});

	it('list and redrive agree on counts with the library calls', async () => {
		const {deadLetterQueue} = await local.startQueues({packageCount: 1});
		await deadLetterQueue.create();
		await put(deadLetterQueue, [JSON.stringify(notFound(guid(1), guid(2))), JSON.stringify(notFound(guid(1), guid(2))), 'junk']);
		const visited: Array<string | undefined> = [];
		expect(await listDeadLetters(deadLetterQueue, 'base64', message => visited.push(message.record?.reason))).toEqual({seen: 3});
		expect(visited.sort()).toEqual(['not-found', 'not-found', undefined]);
		const sent: string[] = [];
		const result = await redriveDeadLetters({deadLetterQueue, encoding: 'base64', reasons: ['not-found'], sendToPairsQueue: async text => void sent.push(text)});
		// Two copies of one record go back as one pair, and both copies are removed.
		expect(result).toMatchObject({redriven: 2, resent: 0, left: 0, messagesSent: 1, notRedriven: {total: 1}});
		expect(sent.map(text => (JSON.parse(text) as {pairs: unknown[]}).pairs)).toEqual([[{accessPackageId: guid(1), incompatibleAccessPackageId: guid(2)}]]);
		expect(await drainQueue(deadLetterQueue)).toEqual(['junk']);
	});
});
