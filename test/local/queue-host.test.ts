// The local queue host gives the handler what Microsoft's worker gives it: the same item, and the same trigger metadata
// (the message's raw text in `queueTrigger`). The conformance check in .ci/run compares the two on the real worker.

import {readFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import {describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {hostItem, QueueHost} from '../../src/local/queue-host.js';
import {queueHostConfigFrom} from '../../src/config/host-config.js';
import {encodeMessage} from '../../src/queue/storage-queue.js';
import {spawnCli, waitFor} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {drainJson, queueService} from '../support/queues.js';

const local = useLocalStack();

describe('hostItem', () => {
	it.each([
		['{"accessPackageId":"x"}', {accessPackageId: 'x'}],
		['[1,2]', [1, 2]],
		['12', 12],
		['12345678901234567890', 12_345_678_901_234_567_000],
		['"{\\"pairs\\":[]}"', '{"pairs":[]}'],
		['true', true],
		['null', null],
		['not json', 'not json'],
		['', ''],
	])('turns %j into what @azure/functions hands a handler', (text, item) => {
		expect(hostItem(text)).toEqual(item);
	});

	it('mirrors the conversion in the @azure/functions release this project pins (JSON.parse, else the text)', () => {
		// The package does not export it; if a new release changes it, this fails and hostItem must follow.
		const require = createRequire(import.meta.url);
		const library = readFileSync(require.resolve('@azure/functions'), 'utf8');
		expect(library).toContain('return tryJsonParse(data.string);');
		expect(library).toMatch(/function tryJsonParse\(data\) \{\s*try \{\s*return JSON\.parse\(data\);\s*\}\s*catch \(_a\) \{\s*return data;\s*\}\s*\}/);
	});
});

describe('sod-sync run, as the Functions host runs the handler', () => {
	it('links the pairs of a double-encoded message (a JSON string holding the pairs JSON), as Azure does', async () => {
		const simulator = await local.startSimulator({packageCount: 4});
		const [a, b] = simulator.packageIds as [string, string];
		const environment = local.environment(simulator);
		const queue = queueService(local.azurite.connectionString).getQueueClient(environment.SOD_QUEUE);
		await queue.create();
		const inner = JSON.stringify({pairs: [{accessPackageId: a, incompatibleAccessPackageId: b}]});
		await queue.sendMessage(encodeMessage(JSON.stringify(inner), 'base64'));
		const host = spawnCli(['run', '--until-empty'], environment);
		expect(await host.exited).toBe(0);
		expect(simulator.allLinks()).toEqual([`${a}/${b}`]);
	});

	it('hands the handler an invalid message as the worker does: text that is not JSON byte for byte, JSON parsed', async () => {
		const simulator = await local.startSimulator({packageCount: 4});
		const environment = local.environment(simulator);
		const service = queueService(local.azurite.connectionString);
		const queue = service.getQueueClient(environment.SOD_QUEUE);
		await queue.create();
		await queue.sendMessage(encodeMessage('not  json {', 'base64'));
		await queue.sendMessage(encodeMessage('{ "pairs" : 12345678901234567890 }', 'base64'));
		const host = spawnCli(['run', '--until-empty'], environment);
		expect(await host.exited).toBe(0);
		const records = await drainJson<DeadLetterRecord>(service.getQueueClient(environment.SOD_DEAD_LETTER_QUEUE));
		// The conformance check in .ci/run finds the same two records under Microsoft's worker.
		expect(records.map(record => record.message).sort()).toEqual(['not  json {', '{"pairs":12345678901234567000}']);
	});
});

describe('QueueHost', () => {
	it('moves a message already past maxDequeueCount (its last delivery died mid-run) to the poison queue without running it', async () => {
		const service = queueService(local.azurite.connectionString);
		const queue = service.getQueueClient(`past-max-${Date.now()}`);
		await queue.create();
		await queue.sendMessage(encodeMessage('{"pairs":[]}', 'base64'));
		// A delivery that died: received (dequeue count 1), never deleted, visible again a second later.
		await queue.receiveMessages({numberOfMessages: 1, visibilityTimeout: 1});
		const handled: unknown[] = [];
		const host = new QueueHost({
			queue,
			poisonQueue: service.getQueueClient(`${queue.name}-poison`),
			config: queueHostConfigFrom({maxDequeueCount: 1, maxPollingInterval: '00:00:01'}),
			handler: async item => {
				handled.push(item);
			},
		});
		await waitFor(async () => ((await queue.peekMessages()).peekedMessageItems.length > 0), 5000, 'the message to be visible again');
		const counts = await host.run({untilEmpty: true});
		expect(handled).toEqual([]);
		expect(counts.poisoned).toBe(1);
		const poisoned = await service.getQueueClient(`${queue.name}-poison`).receiveMessages();
		expect(poisoned.receivedMessageItems.map(item => Buffer.from(item.messageText, 'base64').toString())).toEqual(['{"pairs":[]}']);
	});
});
