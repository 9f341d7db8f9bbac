// The chaos run: a throttling, failing, slow simulator; two hosts on one queue, one of them killed with SIGKILL in the
// middle and started again; a few thousand pairs, some invalid, some already linked, some naming unknown packages.
// Afterwards every valid pair is linked, every bad one is in the dead letters once with the right reason, no queue but
// the dead-letter one holds anything, and Graph saw nothing but the expected routes.

import {Buffer} from 'node:buffer';
import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {startAzurite, type RunningAzurite} from '../../src/local/azurite.js';
import {deadLetterIdentity} from '../../src/queue/dead-letter-queue.js';
import {GraphSimulator} from '../../src/simulator/graph-simulator.js';
import {killChildren, runCli, runInProcess, spawnCli, waitFor} from '../support/cli.js';
import {countMessages, drainJson, queueService, uniqueQueueName} from '../support/queues.js';

let azurite: RunningAzurite;
let simulator: GraphSimulator;

beforeAll(async () => {
	azurite = await startAzurite();
	simulator = await GraphSimulator.start({
		packageCount: 60,
		duplicateAddStatus: 409,
		throttle: {operationsPerSecond: 400, burstOperations: 400, retryAfter: 'decimal'},
		faults: {serverErrorRate: 0.03, resetAfterWriteRate: 0.02, latencyMs: 15, jitterMs: 10},
		seed: 11,
	});
});

afterAll(async () => {
	killChildren();
	await simulator.close();
	await azurite.stop();
});

describe('chaos', () => {
	it('loses nothing and dead-letters exactly what it must', async () => {
		const environment = {
			AzureWebJobsStorage: azurite.connectionString,
			SOD_QUEUE: uniqueQueueName('chaos'),
			SOD_DEAD_LETTER_QUEUE: uniqueQueueName('chaos-dead'),
			GRAPH_BASE_URL: simulator.baseUrl,
			GRAPH_ACCESS_TOKEN: simulator.token,
			SOD_RETRY_BASE_MS: '20',
		};
		const ids = simulator.packageIds;
		const valid = ids.flatMap(a => ids.filter(b => b !== a).map(b => [a, b] as [string, string])).slice(0, 3000);
		for (const [a, b] of valid.slice(0, 150)) {
			simulator.link(a, b); // Already linked.
		}

		const unknown = ids.slice(0, 25).map(a => [a, `00000000-0000-4000-8000-${String(ids.indexOf(a)).padStart(12, '0')}`] as [string, string]);
		const csv = (rows: Array<[string, string]>) => `accessPackageId,incompatibleAccessPackageId\n${rows.map(row => row.join(',')).join('\n')}\n`;
		// Spread over several imports, so that several messages are in flight on each host.
		for (let start = 0; start < valid.length; start += 300) {
			const rows = [...valid.slice(start, start + 300), ...unknown.filter((_, index) => index % 10 === start / 300)];
			// eslint-disable-next-line no-await-in-loop
			expect((await runInProcess(['enqueue', '-'], environment, csv(rows))).code).toBe(0);
		}

		// A producer that does not validate: invalid pairs reach the queue and must be dead-lettered by the worker.
		const invalid = [
			{accessPackageId: ids[0], incompatibleAccessPackageId: ids[0]},
			{accessPackageId: 'not-a-guid', incompatibleAccessPackageId: ids[1]},
			{accessPackageId: `${ids[2]}/../x`, incompatibleAccessPackageId: ids[3]},
		];
		const producer = queueService(azurite.connectionString).getQueueClient(environment.SOD_QUEUE);
		await producer.sendMessage(Buffer.from(JSON.stringify({pairs: [...invalid, {accessPackageId: ids[4], incompatibleAccessPackageId: ids[5]}]})).toString('base64'));

		// 2% of writing requests drop their connection at random; with finer pacing a run may make few enough requests to
		// draw none, so three adds are scripted to drop too: the run always meets a write whose outcome is unknown.
		simulator.script({method: 'POST', path: /\/incompatibleAccessPackages\/\$ref$/, resetAfterWrite: true, times: 3});
		const steady = spawnCli(['run', '--until-empty', '--lease-seconds', '3'], environment);
		const doomed = spawnCli(['run', '--lease-seconds', '3'], environment);
		await waitFor(() => simulator.allLinks().length >= 1200, 40_000, 'the hosts to link a good part of the pairs');
		doomed.child.kill('SIGKILL');
		await doomed.exited;
		const restarted = await runCli(['run', '--until-empty', '--lease-seconds', '3'], environment, 60_000);
		expect(restarted.code, restarted.output).toBe(0);
		expect(await steady.exited).toBe(0);

		const links = new Set(simulator.allLinks());
		const expected = [...valid, [ids[4]!, ids[5]!] as [string, string]].map(([a, b]) => `${a}/${b}`);
		expect(expected.filter(link => !links.has(link))).toEqual([]);
		expect(links.size).toBe(new Set(expected).size);

		const records = await drainJson<DeadLetterRecord>(queueService(azurite.connectionString).getQueueClient(environment.SOD_DEAD_LETTER_QUEUE));
		// A message delivered again after its dead letters were written (the killed host) writes them again: count once.
		const distinct = [...new Map(records.map(record => [deadLetterIdentity(record), record])).values()];
		const summary = distinct.map(record => `${record.reason} ${JSON.stringify(record.pair)}`).sort();
		const expectedDeadLetters = [
			...unknown.map(([a, b]) => `not-found ${JSON.stringify({accessPackageId: a, incompatibleAccessPackageId: b})}`),
			...invalid.map(pair => `invalid-pair ${JSON.stringify(pair)}`),
		].sort();
		expect(summary).toEqual(expectedDeadLetters);
		expect(await countMessages(producer)).toBe(0);
		expect(await countMessages(queueService(azurite.connectionString).getQueueClient(`${environment.SOD_QUEUE}-poison`))).toBe(0);
		expect(simulator.stats.unmatched).toEqual([]);
		for (const route of Object.keys(simulator.stats.byRoute)) {
			expect(['GET links', 'POST $batch', 'POST link']).toContain(route);
		}

		expect(simulator.stats.byStatus[429]).toBeGreaterThan(0);
		expect(simulator.stats.resets).toBeGreaterThan(0);
	}, 120_000);
});
