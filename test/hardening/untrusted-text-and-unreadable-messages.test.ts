// Untrusted text printed safely, input files bounded, and every unreadable message ending as one whole dead letter:
// hostile producers, a misbehaving Graph and careless settings, each through the path a user meets (the CLI, the real
// queue on Azurite, the handler), each asserting what the user would see.

import {describe, expect, it} from 'vitest';
import {parseMessage} from '../../src/message/message.js';
import {encodeMessage} from '../../src/queue/storage-queue.js';
import {printable} from '../../src/text/untrusted-text.js';
import {runInProcess} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {countMessages, drainJson, drainQueue, queueService} from '../support/queues.js';
import {spawnCli} from '../support/cli.js';

const local = useLocalStack();

async function stack() {
	const simulator = await local.startSimulator({packageCount: 6});
	const environment = local.environment(simulator);
	const service = queueService(local.azurite.connectionString);
	return {
		simulator,
		ids: simulator.packageIds as [string, string, string, string, string, string],
		environment,
		pairsQueue: service.getQueueClient(environment.SOD_QUEUE),
		deadLetterQueue: service.getQueueClient(environment.SOD_DEAD_LETTER_QUEUE),
	};
}

describe('control characters and correlation ids', () => {
	it('refuses in the contract a correlationId with control characters, saying so', () => {
		const parsed = parseMessage({pairs: [], correlationId: 'import-7\nsod-sync message x; linked 1'});
		expect(parsed).toMatchObject({kind: 'invalid-message', reason: expect.stringMatching(/"correlationId" must hold printable characters only/)});
		expect(parseMessage({pairs: [], correlationId: 'x'.repeat(257)})).toMatchObject({kind: 'invalid-message', reason: expect.stringMatching(/1 to 256 characters/)});
	});

	it.each([
		['too long', 'x'.repeat(300), /--correlation-id must be a string of 1 to 256 characters/],
		['with a newline and ANSI codes', 'import-7\n\u001B[32msod-sync message m; linked 1', /--correlation-id must hold printable characters only/],
	])('sod-sync enqueue refuses a --correlation-id %s (exit 2, nothing sent)', async (_name, correlationId, message) => {
		const {ids, environment, pairsQueue} = await stack();
		const result = await runInProcess(['enqueue', '-', '--correlation-id', correlationId], environment, `accessPackageId,incompatibleAccessPackageId\n${ids[0]},${ids[1]}\n`);
		expect(result.code).toBe(2);
		expect(result.stderr).toMatch(message);
		expect(result.stderr).not.toContain('\u001B');
		expect(await countMessages(pairsQueue)).toBe(0);
	});

	it('escapes control characters wherever untrusted text is printed (dead-letters list)', async () => {
		const {environment, deadLetterQueue} = await stack();
		await deadLetterQueue.create();
		const record = {
			reason: 'invalid-pair',
			pair: {accessPackageId: 'x\n\u001B[31mforged line', incompatibleAccessPackageId: 'y'},
			action: 'add',
			error: {status: null, code: null, message: 'bad\r\nsod-sync message m; linked 1', requestId: null},
			attempts: 1,
			correlationId: 'c\u001B]0;title\u0007',
			sourceMessageId: 'm',
			deadLetteredAt: '2026-11-30T10:00:00.000Z',
			message: null,
		};
		await deadLetterQueue.sendMessage(encodeMessage(JSON.stringify(record), 'base64'));
		const result = await runInProcess(['dead-letters', 'list'], environment);
		expect(result.code).toBe(0);
		expect(result.stdout).not.toMatch(/[\u0000-\u0009\u000B-\u001F\u007F]/);
		expect(result.stdout).toContain('\\u001b[31mforged line');
		expect(result.stdout.split('\n').filter(line => line.includes('linked 1'))).toHaveLength(1);
		expect(printable('a\u202Eb')).toBe('a\\u202eb');
	});
});

describe('bounded input files', () => {
	it('reports a line of megabytes by its number (exit 2, nothing sent) without holding it', async () => {
		const {ids, environment, pairsQueue} = await stack();
		const huge = 'x'.repeat(20 * 1024 * 1024);
		const input = `accessPackageId,incompatibleAccessPackageId\n${ids[0]},${ids[1]}\n${huge},${ids[2]}\n`;
		const result = await runInProcess(['enqueue', '-'], environment, input);
		expect(result.code).toBe(2);
		expect(result.stderr).toContain('stdin: line 3: the line is longer than 65,536 characters');
		expect(await countMessages(pairsQueue)).toBe(0);
	});

	it('reports a JSON Lines row nested 20,000 deep by its line number (exit 2), with no stack overflow', async () => {
		const {ids, environment} = await stack();
		const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
		const input = `{"accessPackageId":"${ids[0]}","incompatibleAccessPackageId":"${ids[1]}"}\n{"accessPackageId":${deep}}\n`;
		const result = await runInProcess(['enqueue', '-', '--format', 'jsonl'], environment, input);
		expect(result.code).toBe(2);
		expect(result.stderr).toContain('stdin: line 2: JSON nested deeper than 32 levels');
		expect(result.stderr).not.toMatch(/call stack/);
	});
});

describe('every message ends as a dead letter with its reason, whole, at a bounded cost', () => {
	async function runWorker(environment: Record<string, string>) {
		const host = spawnCli(['run', '--until-empty'], environment);
		expect(await host.exited, host.output()).toBe(0);
		return host.output();
	}

	it('keeps an unreadable message too large for its record whole, in a blob the record names, and redrive replays it byte for byte', async () => {
		const {environment, pairsQueue, deadLetterQueue} = await stack();
		await pairsQueue.create();
		// 40,000 backslashes fit a queue message (53 KiB in base64) but not a record: JSON doubles each one.
		const text = `not json ${'\\'.repeat(40_000)}`;
		await pairsQueue.sendMessage(encodeMessage(text, 'base64'));
		await runWorker(environment);
		const [record] = await drainJson<DeadLetterRecord>(deadLetterQueue);
		expect(record).toMatchObject({reason: 'invalid-message', message: null, messageBlob: expect.stringMatching(/^sod-sync-dead-letters\/.+\.txt$/)});
		await deadLetterQueue.sendMessage(encodeMessage(JSON.stringify(record), 'base64'));
		const redrive = await runInProcess(['dead-letters', 'redrive', '--reason', 'invalid-message'], environment);
		expect(redrive.stdout).toMatch(/redrove 1 records/);
		expect(await drainQueue(pairsQueue)).toEqual([text]);
		expect(await countMessages(deadLetterQueue)).toBe(0);
	});

	it.each([
		['16,000 control bytes', '\u0001'.repeat(16_000), /not valid JSON/],
		['JSON nested 5,000 deep', `${'['.repeat(5000)}${']'.repeat(5000)}`, /JSON nested deeper than 32 levels/],
		['an envelope nested 5,000 deep', `{"pairs":[${'['.repeat(5000)}${']'.repeat(5000)}]}`, /JSON nested deeper than 32 levels/],
		['24,000 items', `[${Array.from({length: 24_000}, () => '0').join(',')}]`, /holds 24,000 items; a message holds at most 1,000 pairs/],
	])('dead-letters %s as one invalid-message record, never poison', async (_name, text, reason) => {
		const {environment, pairsQueue, deadLetterQueue} = await stack();
		await pairsQueue.create();
		await pairsQueue.sendMessage(encodeMessage(text, 'base64'));
		await runWorker(environment);
		const records = await drainJson<DeadLetterRecord>(deadLetterQueue);
		expect(records).toEqual([expect.objectContaining({reason: 'invalid-message', error: expect.objectContaining({message: expect.stringMatching(reason)})})]);
		const kept = records[0]!.message ?? '';
		expect(kept === text || records[0]!.messageBlob !== null).toBe(true);
		expect(await countMessages(queueService(local.azurite.connectionString).getQueueClient(`${environment.SOD_QUEUE}-poison`))).toBe(0);
	});

	it('groups the invalid pairs of a message into few records, each pair with its reason', async () => {
		const {ids, environment, pairsQueue, deadLetterQueue} = await stack();
		await pairsQueue.create();
		const invalid = Array.from({length: 300}, (_, index) => ({accessPackageId: `bad-${index}`, incompatibleAccessPackageId: ids[1]}));
		await pairsQueue.sendMessage(encodeMessage(JSON.stringify({pairs: [...invalid, {accessPackageId: ids[0], incompatibleAccessPackageId: ids[1]}]}), 'base64'));
		const output = await runWorker({...environment, SOD_QUEUE: environment.SOD_QUEUE});
		const records = await drainJson<DeadLetterRecord>(deadLetterQueue);
		expect(records.length).toBeLessThanOrEqual(2);
		const listed = records.flatMap(record => record.invalidPairs ?? []);
		// Written concurrently: the records' order on the queue is not the message's order.
		const byId = (x: {accessPackageId: string}, y: {accessPackageId: string}) => x.accessPackageId.localeCompare(y.accessPackageId);
		expect((listed.map(entry => entry.pair) as typeof invalid).sort(byId)).toEqual([...invalid].sort(byId));
		expect(listed.every(entry => /accessPackageId "bad-\d+" is not a GUID/.test(entry.reason))).toBe(true);
		expect(output).toMatch(/dead-letter 300 \(invalid-pair 300\)/);
	});
});
