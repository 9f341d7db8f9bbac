// The import ledger end to end, as an operator meets it: an import with invalid rows, unknown packages and duplicates,
// run by three `sod-sync run` processes with one killed mid-run; `status` adds up exactly, `changes` lists exactly the
// links the simulator gained, `undo` puts them back. And the ledger off or unreachable: the import still completes.

import {randomUUID} from 'node:crypto';
import {describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import {runCli, runInProcess, spawnCli, waitFor} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {countMessages, drainJson} from '../support/queues.js';

const local = useLocalStack({blob: true});

function orderedPairs(ids: string[]): Array<[string, string]> {
	return ids.flatMap(a => ids.filter(b => b !== a).map(b => [a, b] as [string, string]));
}

function csv(rows: ReadonlyArray<readonly [string, string]>): string {
	return `accessPackageId,incompatibleAccessPackageId\n${rows.map(([a, b]) => `${a},${b}`).join('\n')}\n`;
}

interface StatusJson {
	correlationId: string;
	state: string;
	pairs: number;
	outcomes: Record<'linked' | 'already-linked' | 'removed' | 'already-absent' | 'dead-letter' | 'requeued', number>;
	deadLetters: Record<string, number>;
	pending: number;
	done: boolean;
	changed: {linked: number; removed: number};
	withoutPreImage: number;
	invalidRows: number;
}

async function statusOf(environment: Record<string, string>, correlationId: string): Promise<StatusJson> {
	const result = await runInProcess(['status', correlationId, '--json'], environment);
	expect(result.code, result.stderr).toBe(0);
	return JSON.parse(result.stdout) as StatusJson;
}

function deadLetteredPairs(records: DeadLetterRecord[]): number {
	return records.reduce((sum, record) => sum + (record.invalidPairs?.length ?? 1), 0);
}

describe('the import ledger: status, changes and undo', () => {
	it('adds up exactly with three workers, one killed mid-run; changes lists what Graph gained; undo puts it back', async () => {
		const unknown = randomUUID();
		let posts = 0;
		const {simulator, ids, environment, deadLetterQueue, pairsQueue} = await local.startQueues({
			packageCount: 56,
			throttle: {operationsPerSecond: 400, retryAfterSeconds: 1},
			// Dropped connections after the write: the retry finds the link made, and only the pre-image says by whom.
			faults: {latencyMs: 10, jitterMs: 10, resetAfterWriteRate: 0.01, serverErrorRate: 0.01},
			onRequest(method) {
				if (method === 'POST') {
					posts++;
				}
			},
		});
		const all = orderedPairs(ids);
		const pairs = all.slice(0, 2600);
		// Links the tenant had before the import, some of them in it.
		const already = [...pairs.slice(0, 60), ...all.slice(2900, 2920)];
		for (const [a, b] of already) {
			simulator.link(a, b);
		}

		const before = new Set(simulator.allLinks());
		// Duplicates far apart (other messages), pairs to a package Graph does not know, and invalid rows.
		const rows: Array<readonly [string, string]> = [...pairs, ...pairs.slice(100, 130), ...ids.slice(0, 8).map(a => [a, unknown] as const), ['not-a-guid', ids[0]!], [ids[1]!, ids[1]!]];
		const settings = {...environment, GRAPH_MAX_CONCURRENCY: '4', GRAPH_BATCH_SIZE: '10', SOD_NOT_FOUND_RETRIES: '1'};
		// Sent in pieces under one correlation id (one import), so that the three workers each get some messages.
		for (let start = 0; start < rows.length; start += 150) {
			// eslint-disable-next-line no-await-in-loop
			const sent = await runInProcess(['enqueue', '-', '--skip-invalid', '--correlation-id', 'import-42'], settings, csv(rows.slice(start, start + 150)));
			expect(sent.code, sent.stderr).toBe(0);
		}

		// The first worker takes messages and is linking when the others start; then it is killed, mid-message: its
		// leased messages come back after the lease, some of their links already made and never recorded.
		const run = () => spawnCli(['run', '--until-empty', '--lease-seconds', '3'], settings);
		const doomed = run();
		await waitFor(() => posts >= 40, 30_000, 'the first worker to be linking');
		const survivors = [run(), run()];
		await waitFor(() => posts >= 80, 30_000, 'more links');
		doomed.child.kill('SIGKILL');
		expect(await doomed.exited).toBe(null);
		expect(await Promise.all(survivors.map(async worker => worker.exited))).toEqual([0, 0]);

		const status = await statusOf(settings, 'import-42');
		const gained = simulator.allLinks().filter(link => !before.has(link));
		const deadLetters = await drainJson<DeadLetterRecord>(deadLetterQueue);
		// Enqueued: every valid row, less a repeat of a pair in the same message (none here: repeats are 150 rows apart
		// within a piece, and pieces are messages of their own).
		expect(status.pairs).toBe(rows.length - 2);
		expect(status.invalidRows).toBe(2);
		expect(Object.values(status.outcomes).reduce((sum, count) => sum + count, 0) + status.pending).toBe(status.pairs);
		expect(status).toMatchObject({pending: 0, done: true, state: 'done', withoutPreImage: 0});
		expect(status.outcomes.requeued).toBe(0);
		expect(status.outcomes.linked).toBe(gained.length);
		expect(status.changed).toEqual({linked: gained.length, removed: 0});
		// Already linked: the 60 the tenant had, and the 30 repeats.
		expect(status.outcomes['already-linked']).toBe(90);
		expect(status.outcomes['dead-letter']).toBe(deadLetteredPairs(deadLetters));
		expect(status.deadLetters).toEqual({'not-found': 8});

		const changes = await runInProcess(['changes', 'import-42'], settings);
		expect(changes.code, changes.stderr).toBe(0);
		const [header, ...lines] = changes.stdout.trim().split('\n');
		expect(header).toBe('accessPackageId,incompatibleAccessPackageId,change');
		expect(lines.map(line => line.split(',')).map(([a, b, change]) => `${a}/${b} ${change}`)).toEqual(gained.map(link => `${link} linked`).sort());
		const jsonl = await runInProcess(['changes', 'import-42', '--format', 'jsonl'], settings);
		expect(jsonl.stdout.trim().split('\n').map(line => JSON.parse(line) as {accessPackageId: string; incompatibleAccessPackageId: string; change: string})).toHaveLength(gained.length);

		const dryRun = await runInProcess(['undo', 'import-42', '--dry-run'], settings);
		expect(dryRun.code, dryRun.stderr).toBe(0);
		expect(dryRun.stderr).toContain(`${gained.length.toLocaleString('en-US')} links to remove, 0 to add back; nothing sent`);
		expect(dryRun.stdout.trim().split('\n')).toHaveLength(gained.length + 1);
		expect(await countMessages(pairsQueue)).toBe(0);

		const undo = await runInProcess(['undo', 'import-42'], settings);
		expect(undo.code, undo.stderr).toBe(0);
		const undoId = /correlation (\S+) /.exec(undo.stdout)?.[1];
		expect(undoId).toMatch(/^undo-\d{8}T\d{6}Z-import-42$/);
		const worker = spawnCli(['run', '--until-empty'], settings);
		expect(await worker.exited).toBe(0);
		// Back to exactly what it was: the import's links gone, the tenant's own (in the import or not) untouched.
		expect(simulator.allLinks()).toEqual([...before].sort());
		const undone = await statusOf(settings, undoId!);
		expect(undone).toMatchObject({pairs: gained.length, done: true, changed: {linked: 0, removed: gained.length}});
		expect(undone.outcomes.removed).toBe(gained.length);
		const listed = await runInProcess(['status'], settings);
		expect(listed.stdout).toMatch(new RegExp(`${undoId}\\s+done\\s+${gained.length.toLocaleString('en-US')}/${gained.length.toLocaleString('en-US')} settled`));
		expect(listed.stdout).toMatch(/import-42\s+done\s+/);
	}, 180_000);

	it('status --watch prints a plain line per refresh off a terminal, then the totals once the import is done', async () => {
		const {ids, environment} = await local.startQueues({throttle: {operationsPerSecond: 150, retryAfterSeconds: 1}, faults: {latencyMs: 10, jitterMs: 5}});
		const rows = orderedPairs(ids).slice(0, 400);
		expect((await runInProcess(['enqueue', '-', '--correlation-id', 'watched'], environment, csv(rows))).code).toBe(0);
		const watch = spawnCli(['status', 'watched', '--watch', '--interval', '0.2'], environment);
		await waitFor(() => watch.output().includes('watched: 0 of 400 settled, 400 left'), 10_000, 'a first progress line');
		const worker = spawnCli(['run', '--until-empty'], environment);
		expect(await worker.exited).toBe(0);
		expect(await watch.exited).toBe(0);
		const output = watch.output();
		expect(output).toMatch(/watched: done; import from stdin/);
		expect(output).toMatch(/\n  linked +400\n/);
		// Nothing after the totals: the watch ended when the import was done.
		expect(output.trimEnd().endsWith('(sod-sync changes watched)')).toBe(true);
	}, 60_000);

	it('accounts for group rules against the package\'s group list: status, changes (with the group column) and undo', async () => {
		const {simulator, ids, environment} = await local.startQueues({duplicateAddStatus: 409});
		const group = (n: number) => `00000000-0000-4000-b000-${String(n).padStart(12, '0')}`;
		for (const n of [1, 2, 3]) {
			simulator.addGroup(group(n));
		}

		simulator.linkGroup(ids[0]!, group(1)); // there before the import: not its change
		simulator.link(ids[0]!, ids[1]!); // likewise for the package rule
		// The same id as a package target and as a group target are two different rules, judged by two lists.
		const rows = [`${ids[0]},,${group(1)}`, `${ids[0]},,${group(2)}`, `${ids[1]},,${group(3)}`, `${ids[0]},${ids[1]},`, `${ids[0]},${ids[2]},`];
		const input = `accessPackageId,incompatibleAccessPackageId,incompatibleGroupId\n${rows.join('\n')}\n`;
		expect((await runInProcess(['enqueue', '-', '--correlation-id', 'groups-42'], environment, input)).code).toBe(0);
		const run = await runCli(['run', '--until-empty'], environment);
		expect(run.code, run.output).toBe(0);
		const status = await statusOf(environment, 'groups-42');
		expect(status).toMatchObject({pairs: 5, done: true, outcomes: {linked: 3, 'already-linked': 2, 'dead-letter': 0}, changed: {linked: 3, removed: 0}, withoutPreImage: 0});

		const changes = await runInProcess(['changes', 'groups-42'], environment);
		expect(changes.stdout.trim().split('\n')).toEqual([
			'accessPackageId,incompatibleAccessPackageId,incompatibleGroupId,change',
			...[`${ids[0]},${ids[2]},,linked`, `${ids[0]},,${group(2)},linked`, `${ids[1]},,${group(3)},linked`].sort((a, b) => a.replace(',,', '/group/').localeCompare(b.replace(',,', '/group/'))),
		]);
		const jsonl = await runInProcess(['changes', 'groups-42', '--format', 'jsonl'], environment);
		expect(jsonl.stdout).toContain(JSON.stringify({accessPackageId: ids[1], incompatibleGroupId: group(3), change: 'linked'}));

		const undo = await runInProcess(['undo', 'groups-42', '--correlation-id', 'undo-groups-42'], environment);
		expect(undo.code, undo.stderr).toBe(0);
		expect((await runCli(['run', '--until-empty'], environment)).code).toBe(0);
		// Back to what it was before the import, the links that were there then included.
		expect(simulator.allGroupLinks()).toEqual([`${ids[0]}/${group(1)}`]);
		expect(simulator.allLinks()).toEqual([`${ids[0]}/${ids[1]}`]);
		expect(await statusOf(environment, 'undo-groups-42')).toMatchObject({pairs: 3, done: true, outcomes: {removed: 3}});
	}, 60_000);

	it('refuses to undo an import that is not done, and says why', async () => {
		const {ids, environment} = await local.startQueues();
		const sent = await runInProcess(['enqueue', '-', '--correlation-id', 'not-yet'], environment, csv([[ids[0]!, ids[1]!]]));
		expect(sent.code, sent.stderr).toBe(0);
		const undo = await runInProcess(['undo', 'not-yet'], environment);
		expect(undo.code).toBe(3);
		expect(undo.stderr).toMatch(/'not-yet' is not done \(1 pairs left\)/);
		const missing = await runInProcess(['status', 'no-such-import'], environment);
		expect(missing.code).toBe(3);
		expect(missing.stderr).toMatch(/no import 'no-such-import' in the ledger/);
	}, 60_000);

	it('with the ledger unreachable the import completes, nothing is lost, and the worker warns once', async () => {
		const {simulator, ids, environment, deadLetterQueue} = await local.startQueues();
		const rows = orderedPairs(ids).slice(0, 200);
		// A table endpoint nobody listens on.
		const unreachable = {...environment, AzureWebJobsStorage: `${environment.AzureWebJobsStorage.replace(/TableEndpoint=[^;]+;/, '')}TableEndpoint=http://127.0.0.1:9/devstoreaccount1;`};
		const sent = await runInProcess(['enqueue', '-'], unreachable, csv(rows));
		expect(sent.code, sent.stderr).toBe(0);
		expect(sent.stderr).toMatch(/sod-sync ledger: the import could not be recorded .*its pairs are sent as usual/);
		const worker = spawnCli(['run', '--until-empty'], unreachable);
		expect(await worker.exited).toBe(0);
		expect(simulator.allLinks()).toHaveLength(200);
		expect(await countMessages(deadLetterQueue)).toBe(0);
		expect(worker.output().match(/the import ledger cannot be written/g)).toHaveLength(1);
		expect(worker.output()).toMatch(/settled messages could not be recorded before exit/);
	}, 60_000);

	it('with the ledger off (SOD_LEDGER_RETENTION_DAYS=0) nothing is recorded or read, and the import completes', async () => {
		const {simulator, ids, environment} = await local.startQueues();
		const off = {...environment, SOD_LEDGER_RETENTION_DAYS: '0'};
		const rows = orderedPairs(ids).slice(0, 50);
		expect((await runInProcess(['enqueue', '-', '--correlation-id', 'quiet'], off, csv(rows))).code).toBe(0);
		const worker = spawnCli(['run', '--until-empty'], off);
		expect(await worker.exited).toBe(0);
		expect(worker.output()).not.toMatch(/ledger/);
		expect(simulator.allLinks()).toHaveLength(50);
		const status = await runInProcess(['status', 'quiet'], off);
		expect(status.code).toBe(1);
		expect(status.stderr).toMatch(/the import ledger is off \(SOD_LEDGER_RETENTION_DAYS=0\)/);
		// Nothing was written while it was off.
		expect((await runInProcess(['status', 'quiet'], environment)).code).toBe(3);
	}, 60_000);
});
