// The local stack end to end: CSV -> `sod-sync enqueue` -> a real Azurite queue -> `sod-sync run` (separate processes,
// killed and restarted) -> the Graph simulator; then the dead-letter queue, read and redriven by the CLI.

import {Buffer} from 'node:buffer';
import {beforeAll, describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import type {SimulatorOptions} from '../../src/simulator/graph-simulator.js';
import {runCli, runInProcess, spawnCli, waitFor} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {countMessages, drainJson, drainQueue, queueService} from '../support/queues.js';

const local = useLocalStack();

const unknownPackage = '00000000-0000-4000-a000-000000000404';

async function stack(options: SimulatorOptions = {}) {
	return local.startQueues(options);
}

function csv(rows: Array<[string, string]>, extra = ''): string {
	return `accessPackageId,incompatibleAccessPackageId,note\n${rows.map(([a, b]) => `${a},${b},${extra}`).join('\n')}\n`;
}

/** Every ordered pair among `ids`, up to `limit`. */
function allPairs(ids: string[], limit: number): Array<[string, string]> {
	return ids.flatMap(a => ids.filter(b => b !== a).map(b => [a, b] as [string, string])).slice(0, limit);
}

describe('sod-sync enqueue', () => {
	it('reports every invalid row with its line number and enqueues nothing', async () => {
		const {ids, environment, pairsQueue} = await stack();
		const input = `accessPackageId,incompatibleAccessPackageId\n${ids[0]},${ids[1]}\nnot-a-guid,${ids[1]}\n\n${ids[2]},${ids[2]}\n${ids[3]}\n`;
		const result = await runInProcess(['enqueue', '-'], environment, input);
		expect(result.code).toBe(2);
		expect(result.stderr).toContain('stdin: line 3: accessPackageId "not-a-guid" is not a GUID');
		expect(result.stderr).toContain('stdin: line 5: an access package cannot be incompatible with itself');
		expect(result.stderr).toContain('stdin: line 6: expected at least 2 fields, found 1');
		expect(result.stderr).toContain('3 invalid rows; nothing enqueued');
		expect(await countMessages(pairsQueue)).toBe(0);
	});

	it('names a header that lacks the columns', async () => {
		const {environment} = await stack();
		const result = await runInProcess(['enqueue', '-', '--format', 'csv'], environment, 'a,b\n1,2\n');
		expect(result.code).toBe(2);
		expect(result.stderr).toMatch(/line 1: the header must name accessPackageId and incompatibleAccessPackageId or incompatibleGroupId \(or both\); found "a", "b"/);
	});

	it('enqueues the valid rows with --skip-invalid, packed into as few messages as fit', async () => {
		const {ids, environment, pairsQueue} = await stack({packageCount: 40});
		const rows = allPairs(ids, 1200);
		const result = await runInProcess(['enqueue', '-', '--skip-invalid', '--correlation-id', 'bulk-1'], environment, `${csv(rows)}x,y,z\n`);
		expect(result.code).toBe(0);
		// 383 pairs of 128 bytes fill a message to 65,452 of its 65,536 base64 bytes.
		expect(result.stdout).toMatch(/enqueued 1,200 pairs in 4 messages to '.*', correlation bulk-1; 1 invalid rows skipped/);
		const messages = await drainQueue(pairsQueue);
		expect(messages).toHaveLength(4);
		const pairs = messages.flatMap(text => (JSON.parse(text) as {pairs: unknown[]}).pairs);
		expect(pairs).toHaveLength(1200);
		for (const text of messages) {
			expect(JSON.parse(text)).toMatchObject({action: 'add', correlationId: 'bulk-1', attempt: 0});
			expect(Buffer.from(text).toString('base64').length).toBeLessThanOrEqual(64 * 1024);
		}
	});

	it('reads JSON Lines, with per-row symmetric', async () => {
		const {ids, environment, pairsQueue} = await stack();
		const lines = [
			JSON.stringify({accessPackageId: ids[0], incompatibleAccessPackageId: ids[1], symmetric: true}),
			JSON.stringify({accessPackageId: ids[2], incompatibleAccessPackageId: ids[3]}),
		].join('\n');
		const result = await runInProcess(['enqueue', '-', '--action', 'remove'], environment, lines);
		expect(result.code).toBe(0);
		const [message] = await drainQueue(pairsQueue);
		expect(JSON.parse(message!)).toMatchObject({
			action: 'remove',
			pairs: [
				{accessPackageId: ids[0], incompatibleAccessPackageId: ids[1]},
				{accessPackageId: ids[1], incompatibleAccessPackageId: ids[0]},
				{accessPackageId: ids[2], incompatibleAccessPackageId: ids[3]},
			],
		});
	});

	it('exits 2 on an unknown flag and 1 on a bad setting, naming it', async () => {
		const {environment} = await stack();
		expect((await runInProcess(['enqueue', '-', '--bogus'], environment)).stderr).toMatch(/Unknown option '--bogus'/);
		const bad = await runInProcess(['enqueue', '-'], {...environment, GRAPH_MAX_CONCURRENCY: '0'});
		expect(bad.code).toBe(1);
		expect(bad.stderr).toMatch(/GRAPH_MAX_CONCURRENCY: '0' must be a whole number from 1 to 256/);
	});
});

describe('sod-sync run', () => {
	it('applies a CSV import: exactly the expected links and exactly the expected dead letters', async () => {
		const {simulator, ids, environment, pairsQueue, deadLetterQueue} = await stack({faults: {serverErrorRate: 0.05, resetAfterWriteRate: 0.02}});
		simulator.link(ids[0]!, ids[1]!); // Already in the tenant.
		const rows = allPairs(ids.slice(0, 12), 100);
		const enqueued = await runInProcess(['enqueue', '-'], environment, csv([...rows, [ids[5]!, unknownPackage]]));
		expect(enqueued.code).toBe(0);
		const run = await runCli(['run', '--until-empty'], environment);
		expect(run.code, run.output).toBe(0);
		const count = (outcome: string) => Number(new RegExp(`\\n  ${outcome} +(\\d+)`).exec(run.output)?.[1]);
		// Dropped connections after the write turn some adds into verified already-linked ones.
		expect(count('linked') + count('already-linked')).toBe(100);
		expect(count('already-linked')).toBeGreaterThanOrEqual(1);
		expect(count('dead-letter')).toBe(1);
		expect(simulator.allLinks()).toEqual(rows.map(([a, b]) => `${a}/${b}`).sort());
		const records = await drainJson<DeadLetterRecord>(deadLetterQueue);
		expect(records).toEqual([
			expect.objectContaining({reason: 'not-found', pair: {accessPackageId: ids[5], incompatibleAccessPackageId: unknownPackage}, action: 'add'}),
		]);
		expect(await countMessages(pairsQueue)).toBe(0);
		expect(simulator.stats.unmatched).toEqual([]);
	});

	it('moves a message that is not base64 to the poison queue at once, and goes on', async () => {
		const {simulator, ids, environment, pairsQueue, poisonQueue, deadLetterQueue} = await stack();
		await pairsQueue.create();
		await pairsQueue.sendMessage('this is not base64!');
		await runInProcess(['enqueue', '-'], environment, csv([[ids[0]!, ids[1]!]]));
		const run = await runCli(['run', '--until-empty'], environment);
		expect(run.code).toBe(0);
		expect(run.output).toMatch(/moved to '.*-poison' after 1 deliveries: message .* is not valid base64/);
		const {receivedMessageItems: poisoned} = await poisonQueue.receiveMessages({numberOfMessages: 32});
		expect(poisoned.map(item => item.messageText)).toEqual(['this is not base64!']);
		expect(simulator.allLinks()).toEqual([`${ids[0]}/${ids[1]}`]);
		expect(await countMessages(deadLetterQueue)).toBe(0);
	});

	it('loses nothing when the host is killed with SIGKILL mid-run and started again', async () => {
		const {simulator, ids, environment, pairsQueue, deadLetterQueue} = await stack({
			packageCount: 30,
			throttle: {operationsPerSecond: 150, retryAfter: 'decimal'},
			faults: {latencyMs: 20, jitterMs: 10},
		});
		const rows = allPairs(ids, 800);
		for (let start = 0; start < rows.length; start += 100) {
			// Eight messages, so that some are in flight and some still queued when the host dies.
			// eslint-disable-next-line no-await-in-loop
			expect((await runInProcess(['enqueue', '-'], environment, csv(rows.slice(start, start + 100)))).code).toBe(0);
		}

		const first = spawnCli(['run', '--lease-seconds', '3'], environment);
		await waitFor(() => simulator.allLinks().length >= 150, 30_000, 'the first host to make progress');
		first.child.kill('SIGKILL');
		await first.exited;
		const linkedBeforeKill = simulator.allLinks().length;
		expect(linkedBeforeKill).toBeLessThan(rows.length);
		const second = await runCli(['run', '--until-empty', '--lease-seconds', '3'], environment);
		expect(second.code, second.output).toBe(0);
		expect(simulator.allLinks()).toEqual(rows.map(([a, b]) => `${a}/${b}`).sort());
		expect(await countMessages(deadLetterQueue)).toBe(0);
		expect(await countMessages(pairsQueue)).toBe(0);
	});

	it('shares one queue between two hosts: every pair applied, no pair dead-lettered twice', async () => {
		const {simulator, ids, environment, pairsQueue, deadLetterQueue} = await stack({
			packageCount: 30,
			throttle: {operationsPerSecond: 300},
			faults: {latencyMs: 10, jitterMs: 5, serverErrorRate: 0.02},
		});
		const rows = allPairs(ids, 600);
		const missing = ids.slice(0, 20).map(id => [id, unknownPackage] as [string, string]);
		for (let start = 0; start < rows.length; start += 50) {
			// eslint-disable-next-line no-await-in-loop
			await runInProcess(['enqueue', '-'], environment, csv([...rows.slice(start, start + 50), missing[start / 50]!]));
		}

		const hosts = [spawnCli(['run', '--until-empty'], environment), spawnCli(['run', '--until-empty'], environment)];
		const codes = await Promise.all(hosts.map(async host => host.exited));
		expect(codes).toEqual([0, 0]);
		// Both hosts did part of the work.
		for (const host of hosts) {
			expect(host.output()).toMatch(/messages\s+[1-9]/);
		}

		expect(simulator.allLinks()).toEqual(rows.map(([a, b]) => `${a}/${b}`).sort());
		const records = await drainJson<DeadLetterRecord>(deadLetterQueue);
		const keys = records.map(record => JSON.stringify(record.pair));
		expect(keys.sort()).toEqual(missing.slice(0, 12).map(([a, b]) => JSON.stringify({accessPackageId: a, incompatibleAccessPackageId: b})).sort());
		expect(await countMessages(pairsQueue)).toBe(0);
	});

	it('on SIGTERM stops taking messages, finishes those in flight, and exits 0; nothing is lost', async () => {
		const {simulator, ids, environment, pairsQueue, deadLetterQueue} = await stack({
			packageCount: 30,
			throttle: {operationsPerSecond: 100},
			faults: {latencyMs: 20},
		});
		const rows = allPairs(ids, 600);
		await runInProcess(['enqueue', '-'], environment, csv(rows));
		const host = spawnCli(['run'], environment);
		await waitFor(() => simulator.allLinks().length >= 100, 30_000, 'the host to make progress');
		host.child.kill('SIGTERM');
		expect(await host.exited).toBe(0);
		expect(host.output()).toMatch(/SIGTERM: finishing what is in flight/);
		expect(simulator.allLinks().length).toBeLessThan(rows.length);
		// What was not done went back on the queue, not to the dead letters, and the interruption cost it no attempt.
		expect(await countMessages(deadLetterQueue)).toBe(0);
		expect(await countMessages(pairsQueue)).toBeGreaterThan(0);
		// Re-queued messages stay invisible while the throttle they met lasts.
		let left: Awaited<ReturnType<typeof pairsQueue.receiveMessages>>['receivedMessageItems'] = [];
		await waitFor(
			async () => {
				left = (await pairsQueue.receiveMessages({numberOfMessages: 32, visibilityTimeout: 1})).receivedMessageItems;
				return left.length > 0;
			},
			15_000,
			'the re-queued messages to become visible',
		);
		for (const item of left) {
			expect((JSON.parse(Buffer.from(item.messageText, 'base64').toString()) as {attempt: number}).attempt).toBe(0);
		}

		// Every message visible (those just received, and any re-queued with a longer wait), so that the next run sees
		// all of them.
		await waitFor(
			async () => (await pairsQueue.peekMessages({numberOfMessages: 32})).peekedMessageItems.length === (await countMessages(pairsQueue)),
			20_000,
			'every message to be visible',
		);
		const rest = await runCli(['run', '--until-empty'], environment);
		expect(rest.code).toBe(0);
		expect(simulator.allLinks()).toHaveLength(rows.length);
	});
});

describe('group rules end to end', () => {
	const group = (n: number) => `00000000-0000-4000-b000-${String(n).padStart(12, '0')}`;

	it('links a CSV mixing package and group rows, dead-letters what does not exist, re-runs as a no-op, and redrives a group dead letter', async () => {
		// Graph's answer to a duplicate add is undocumented: 409 here, so a re-run's adds are verified by reading the lists.
		const {simulator, ids, environment, deadLetterQueue, pairsQueue} = await stack({duplicateAddStatus: 409});
		for (const n of [1, 2]) {
			simulator.addGroup(group(n));
		}

		const rows = [
			`${ids[0]},${ids[1]},`,
			`${ids[0]},,${group(1)}`,
			`${ids[1]},,${group(2).toUpperCase()}`,
			`${ids[2]},,${group(3)}`, // no such group (yet)
			`${ids[3]},${unknownPackage},`,
			`${unknownPackage},,${group(1)}`,
		];
		const input = `accessPackageId,incompatibleAccessPackageId,incompatibleGroupId\n${rows.join('\n')}\n`;
		expect((await runInProcess(['enqueue', '-', '--correlation-id', 'groups-1'], environment, input)).code).toBe(0);
		const first = await runCli(['run', '--until-empty'], environment);
		expect(first.code, first.output).toBe(0);
		const row = (outcome: string) => new RegExp(`\\n  ${outcome} +(\\d+) +(\\d+)`).exec(first.output)?.slice(1).map(Number);
		expect(first.output).toMatch(/pairs +group rules/);
		expect(row('linked')).toEqual([3, 2]);
		expect(row('dead-letter')).toEqual([3, 2]);
		expect(simulator.allLinks()).toEqual([`${ids[0]}/${ids[1]}`]);
		expect(simulator.allGroupLinks()).toEqual([`${ids[0]}/${group(1)}`, `${ids[1]}/${group(2)}`].sort());
		const records = await drainJson<DeadLetterRecord>(deadLetterQueue);
		expect(records.map(record => [record.reason, record.pair]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
			[
				['not-found', {accessPackageId: ids[2], incompatibleGroupId: group(3)}],
				['not-found', {accessPackageId: ids[3], incompatibleAccessPackageId: unknownPackage}],
				['not-found', {accessPackageId: unknownPackage, incompatibleGroupId: group(1)}],
			].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
		);
		for (const record of records) {
			await deadLetterQueue.sendMessage(Buffer.from(JSON.stringify(record)).toString('base64'));
		}

		// The group now exists: its dead letter goes back (the others too, and fail again), and links.
		simulator.addGroup(group(3));
		const redrive = await runInProcess(['dead-letters', 'redrive', '--reason', 'not-found'], environment);
		expect(redrive.code, redrive.stderr).toBe(0);
		expect(JSON.parse((await drainQueue(pairsQueue))[0]!).pairs).toContainEqual({accessPackageId: ids[2], incompatibleGroupId: group(3)});
		expect(await countMessages(deadLetterQueue)).toBe(0);
		expect((await runInProcess(['enqueue', '-', '--correlation-id', 'groups-redriven'], environment, `accessPackageId,incompatibleGroupId\n${ids[2]},${group(3)}\n`)).code).toBe(0);
		await runCli(['run', '--until-empty'], environment);
		expect(simulator.allGroupLinks()).toContain(`${ids[2]}/${group(3)}`);

		// The same import again changes nothing: every valid pair is found linked (verified by reading back the 409s).
		const links = [simulator.allLinks(), simulator.allGroupLinks()];
		const lastWriteAt = simulator.stats.lastWriteAt;
		expect((await runInProcess(['enqueue', '-', '--correlation-id', 'groups-2'], environment, input)).code).toBe(0);
		const again = await runCli(['run', '--until-empty'], environment);
		const rowAgain = (outcome: string) => new RegExp(`\\n  ${outcome} +(\\d+) +(\\d+)`).exec(again.output)?.slice(1).map(Number);
		expect(rowAgain('linked')).toEqual([0, 0]);
		expect(rowAgain('already-linked')).toEqual([4, 3]);
		expect(rowAgain('dead-letter')).toEqual([2, 1]);
		expect([simulator.allLinks(), simulator.allGroupLinks()]).toEqual(links);
		expect(simulator.stats.lastWriteAt).toBe(lastWriteAt);
		expect(simulator.stats.unmatched).toEqual([]);
	});
});

describe('sod-sync dead-letters', () => {
	it('lists every record by reason and leaves the queue exactly as it was', async () => {
		const {ids, environment, deadLetterQueue} = await stack();
		await runInProcess(['enqueue', '-'], environment, csv(ids.slice(0, 3).map(id => [id, unknownPackage] as [string, string])));
		await runCli(['run', '--until-empty'], environment);
		const {receivedMessageItems: none} = await deadLetterQueue.receiveMessages({numberOfMessages: 32, visibilityTimeout: 1});
		expect(none).toHaveLength(3);
		await waitFor(async () => (await deadLetterQueue.peekMessages({numberOfMessages: 32})).peekedMessageItems.length === 3, 10_000, 'the records to be visible again');

		const before = await runInProcess(['dead-letters', 'list', '--json'], environment);
		const records = JSON.parse(before.stdout) as DeadLetterRecord[];
		expect(records.map(record => record.reason)).toEqual(['not-found', 'not-found', 'not-found']);
		const text = await runInProcess(['dead-letters', 'list'], environment);
		expect(text.stdout).toMatch(/^3 dead letters on '.*'\n\nnot-found \(3\)\n/);
		expect(text.stdout).toContain(`${ids[0]} -> ${unknownPackage}  add  |  404 ResourceNotFound`);
		const after = await runInProcess(['dead-letters', 'list', '--json'], environment);
		expect(JSON.parse(after.stdout)).toEqual(expect.arrayContaining(records));
		expect(await countMessages(deadLetterQueue)).toBe(3);
	});

	it('shows a record written twice (its message was delivered again) once, and redrives its pair once', async () => {
		const {ids, environment, deadLetterQueue, pairsQueue} = await stack();
		await deadLetterQueue.create();
		const record = {
			reason: 'not-found',
			pair: {accessPackageId: ids[0], incompatibleAccessPackageId: unknownPackage},
			action: 'add',
			error: {status: 404, code: 'ResourceNotFound', message: 'gone', requestId: null},
			attempts: 1,
			correlationId: 'twice',
			sourceMessageId: 'm-1',
			message: null,
		};
		for (const at of ['2026-11-30T10:00:00.000Z', '2026-11-30T10:00:05.000Z']) {
			// eslint-disable-next-line no-await-in-loop
			await deadLetterQueue.sendMessage(Buffer.from(JSON.stringify({...record, deadLetteredAt: at})).toString('base64'));
		}

		const listed = await runInProcess(['dead-letters', 'list'], environment);
		expect(listed.stdout).toMatch(/^1 dead letters on '.*' \(2 records\)\n\nnot-found \(1\)\n.*\(written 2 times: its message was delivered again\)/);
		const redrive = await runInProcess(['dead-letters', 'redrive'], environment);
		expect(redrive.stdout).toMatch(/redrove 2 records .* in 1 messages; 0 left/);
		const [message] = await drainQueue(pairsQueue);
		expect((JSON.parse(message!) as {pairs: unknown[]}).pairs).toEqual([record.pair]);
		expect(await countMessages(deadLetterQueue)).toBe(0);
	});

	it('redrives the chosen reasons; once the cause is fixed they succeed', async () => {
		const {simulator, ids, environment, deadLetterQueue, pairsQueue} = await stack();
		await runInProcess(['enqueue', '-', '--correlation-id', 'late-package'], environment, csv([[ids[0]!, unknownPackage], [ids[1]!, unknownPackage]]));
		const producer = queueService(local.azurite.connectionString).getQueueClient(environment.SOD_QUEUE);
		await producer.sendMessage(Buffer.from(JSON.stringify({accessPackageId: ids[2], incompatibleAccessPackageId: ids[2]})).toString('base64'));
		await runCli(['run', '--until-empty'], environment);
		expect(await countMessages(deadLetterQueue)).toBe(3);

		simulator.addPackage(unknownPackage); // The package now exists.
		const redrive = await runInProcess(['dead-letters', 'redrive'], environment);
		expect(redrive.code).toBe(0);
		expect(redrive.stdout).toMatch(/redrove 2 records \(not-found, forbidden, bad-request, conflict, retries-exhausted, expired\) to '.*' in 1 messages; 1 left/);
		expect(await countMessages(deadLetterQueue)).toBe(1);
		const [message] = await drainQueue(pairsQueue);
		expect(JSON.parse(message!)).toMatchObject({correlationId: 'late-package', attempt: 0, action: 'add'});
		await pairsQueue.sendMessage(Buffer.from(message!).toString('base64'));

		await runCli(['run', '--until-empty'], environment);
		expect(simulator.linksOf(ids[0]!)).toEqual([unknownPackage]);
		expect(simulator.linksOf(ids[1]!)).toEqual([unknownPackage]);
		const [left] = await drainJson<DeadLetterRecord>(deadLetterQueue);
		expect(left).toMatchObject({reason: 'invalid-pair'});
	});
});
