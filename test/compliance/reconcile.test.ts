// Compliance sync against Azurite and the simulator: `sod-sync reconcile`, the scheduled Function, `sod-sync violations`.

import functions from '@azure/functions';
import {BlobServiceClient} from '@azure/storage-blob';
import {describe, expect, it} from 'vitest';
import {readFileSync} from 'node:fs';
import {writeFile} from 'node:fs/promises';
import {basename, join} from 'node:path';
import {createReconcileTimerHandler, manifestBlobReader, reconcileTimerDependencies} from '../../src/compliance/reconcile-timer.js';
import {maximumManifestRows} from '../../src/compliance/manifest.js';
import type {ReconcileReport} from '../../src/compliance/reconcile.js';
import {staticTokenSource} from '../../src/graph/graph-client.js';
import {QueueSender} from '../../src/queue/storage-queue.js';
import {readReconcileSettings, readSettings} from '../../src/config/settings.js';
import {graphError} from '../../src/simulator/graph-reply.js';
import type {SimulatorOptions} from '../../src/simulator/graph-simulator.js';
import {createLinkEngine} from '../../src/worker/worker-runtime.js';
import {runCli, runInProcess, spawnCli} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {useTemporaryDirectories} from '../support/temporary-directories.js';
import {countMessages, drainQueue, queueService} from '../support/queues.js';

const local = useLocalStack({blob: true});

async function stack(options: SimulatorOptions = {}) {
	const simulator = await local.startSimulator({packageCount: 8, logRequests: true, ...options});
	const environment = local.environment(simulator);
	return {simulator, ids: simulator.packageIds as [string, string, string, string, string, string, string, string], environment};
}

const manifest = (rows: Array<[string, string, boolean?]>) =>
	`accessPackageId,incompatibleAccessPackageId,symmetric\n${rows.map(([a, b, symmetric]) => `${a},${b},${symmetric ? 'true' : ''}`).join('\n')}\n`;

const temporaryDirectory = useTemporaryDirectories('sod-manifest-');

async function writeManifest(text: string): Promise<string> {
	const path = join(await temporaryDirectory(), 'rules.csv');
	await writeFile(path, text);
	return path;
}

describe('sod-sync reconcile', () => {
	it('exits 0 with no drift when the tenant matches the manifest', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b] = ids;
		simulator.link(a, b);
		simulator.link(b, a);
		const result = await runInProcess(['reconcile', await writeManifest(manifest([[a, b, true]]))], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/scope: 2 packages; 2 links desired, 2 present/);
		expect(result.stdout).toMatch(/no drift/);
	});

	it('reports missing and extra links, exits 3, and changes nothing without --apply', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b, c] = ids;
		simulator.link(a, c); // Extra: both named, no rule.
		const result = await runInProcess(['reconcile', await writeManifest(manifest([[a, b], [c, b]])), '--json'], environment);
		expect(result.code).toBe(3);
		const report = JSON.parse(result.stdout) as ReconcileReport;
		expect(report.missing).toEqual([
			{accessPackageId: a, incompatibleAccessPackageId: b},
			{accessPackageId: c, incompatibleAccessPackageId: b},
		].sort((x, y) => `${x.accessPackageId}/${x.incompatibleAccessPackageId}`.localeCompare(`${y.accessPackageId}/${y.incompatibleAccessPackageId}`)));
		expect(report.extra).toEqual([{accessPackageId: a, incompatibleAccessPackageId: c}]);
		expect(report.enqueued).toEqual({add: 0, remove: 0, messages: 0});
		expect(await countMessages(queueService(local.azurite.connectionString).getQueueClient(environment.SOD_QUEUE))).toBe(0);
		expect(simulator.allLinks()).toEqual([`${a}/${c}`]);
	});

	it('pages through many links', async () => {
		const {simulator, environment} = await stack({packageCount: 40, pageSize: 5});
		const [a, ...others] = simulator.packageIds as [string, ...string[]];
		for (const other of others) {
			simulator.link(a, other);
		}

		const result = await runInProcess(['reconcile', await writeManifest(manifest(others.map(other => [a, other] as [string, string]))), '--json'], environment);
		expect(result.code).toBe(0);
		expect(JSON.parse(result.stdout)).toMatchObject({desired: 39, missing: [], extra: []});
		expect(JSON.parse(result.stdout).current).toBe(39);
		expect(simulator.stats.byRoute['GET links']).toBeGreaterThanOrEqual(8 + 39); // 8 pages for a, one for each other package.
	});

	it('--apply enqueues the missing links; once the worker drains the queue, there is no drift', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b, c] = ids;
		const path = await writeManifest(manifest([[a, b, true], [a, c]]));
		const applied = await runInProcess(['reconcile', path, '--apply'], environment);
		expect(applied.code).toBe(3);
		expect(applied.stdout).toMatch(/enqueued 3 adds and 0 removes in 1 messages, correlation (reconcile-\S+) \(sod-sync status \1 --watch\)/);
		expect((await runCli(['run', '--until-empty'], environment)).code).toBe(0);
		expect(simulator.allLinks()).toEqual([`${a}/${b}`, `${b}/${a}`, `${a}/${c}`].sort());
		const again = await runInProcess(['reconcile', path], environment);
		expect(again.code).toBe(0);
		// What --apply enqueued is an import in the ledger, followed to the end like any other.
		const correlationId = /correlation (reconcile-\S+) /.exec(applied.stdout)![1]!;
		const status = JSON.parse((await runInProcess(['status', correlationId, '--json'], environment)).stdout) as Record<string, unknown>;
		expect(status).toMatchObject({pairs: 3, done: true, source: `reconcile of ${basename(path)}`, changed: {linked: 3, removed: 0}});
	});

	it('--prune removes only extra links between in-scope packages, never one to a package the manifest does not name', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b, c, outside] = ids;
		simulator.link(a, b);
		simulator.link(a, c); // Extra, in scope.
		simulator.link(a, outside); // To a package outside the scope.
		simulator.link(outside, a); // From a package outside the scope.
		const path = await writeManifest(manifest([[a, b], [c, b]]));
		const pruned = await runInProcess(['reconcile', path, '--apply', '--prune', '--json'], environment);
		expect(pruned.code).toBe(3);
		const report = JSON.parse(pruned.stdout) as ReconcileReport;
		expect(report.outOfScope).toEqual([{accessPackageId: a, incompatibleAccessPackageId: outside}]);
		expect((await runCli(['run', '--until-empty'], environment)).code).toBe(0);
		expect(simulator.allLinks()).toEqual([`${a}/${b}`, `${a}/${outside}`, `${c}/${b}`, `${outside}/${a}`].sort());
		// The outside package was never read, let alone written.
		expect(simulator.stats.log.filter(line => line.includes(`accessPackages/${outside}/`))).toEqual([]);
	});

	it('--scope all reads every package in the tenant', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b, , outside] = ids;
		simulator.link(outside, a);
		const result = await runInProcess(['reconcile', await writeManifest(manifest([[a, b]])), '--scope', 'all', '--json'], environment);
		const report = JSON.parse(result.stdout) as ReconcileReport;
		expect(report.scope).toHaveLength(8);
		expect(report.extra).toEqual([{accessPackageId: outside, incompatibleAccessPackageId: a}]);
		expect(simulator.stats.byRoute['GET packages']).toBe(1);
	});

	it('--scope all survives a package id from Graph that is not a GUID: exit 1 naming it, no crash', async () => {
		const {simulator, ids, environment} = await stack();
		simulator.addPackage('Not-A-Guid');
		const host = spawnCli(['reconcile', await writeManifest(manifest([[ids[0], ids[1]]])), '--scope', 'all'], environment);
		expect(await host.exited).toBe(1);
		expect(host.output()).toMatch(/could not read not-a-guid's incompatible packages: .*InvalidRequest.*Expected a canonical lower-case GUID/);
		expect(host.output()).not.toMatch(/TypeError|Unhandled|at .*\.js:\d+/);
	});

	it('refuses an invalid manifest with line numbers, and reads nothing', async () => {
		const {simulator, ids, environment} = await stack();
		const result = await runInProcess(['reconcile', await writeManifest(manifest([[ids[0], 'nope'], [ids[1], ids[1]]]))], environment);
		expect(result.code).toBe(2);
		expect(result.stderr).toMatch(/rules\.csv: line 2: incompatibleAccessPackageId "nope" is not a GUID/);
		expect(result.stderr).toMatch(/rules\.csv: line 3: an access package cannot be incompatible with itself/);
		expect(simulator.stats.requests).toBe(0);
	});

	it('exits 1 and names the package when its links cannot be read', async () => {
		const {simulator, ids, environment} = await stack();
		const missing = '00000000-0000-4000-8000-0000000000aa';
		const result = await runInProcess(['reconcile', await writeManifest(manifest([[ids[0], missing]]))], {...environment, SOD_NOT_FOUND_RETRIES: '0'});
		expect(result.code).toBe(1);
		expect(result.stdout).toContain(`could not read ${missing}'s incompatible packages: 404 ResourceNotFound`);
		expect(simulator.allLinks()).toEqual([]);
	});

	it('ends, naming the loop, when a page\'s @odata.nextLink points back at itself', async () => {
		const {simulator, ids, environment} = await stack({faults: {loopingNextLink: true}});
		const [a, b] = ids;
		const result = await runInProcess(['reconcile', await writeManifest(manifest([[a, b]]))], environment);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(new RegExp(`could not read ${a}'s incompatible packages: RepeatedNextLink Graph's @odata.nextLink after page 2 names a page already read`));
		expect(simulator.stats.byRoute['GET links']).toBeLessThanOrEqual(2 * 2); // Two pages per package, two packages.
	});

	it('refuses a manifest of more rows than it may hold with exit 2, before any request', async () => {
		const {simulator, ids, environment} = await stack();
		const row = `${ids[0]},${ids[1]},\n`;
		const result = await runInProcess(['reconcile', await writeManifest(`accessPackageId,incompatibleAccessPackageId,symmetric\n${row.repeat(maximumManifestRows + 1)}`)], environment);
		expect(result.code).toBe(2);
		expect(result.stderr).toMatch(/rules\.csv: more than 250,000 rows \(or links, its sets expanded\): a manifest holds rules, not bulk data .*; nothing was done/);
		expect(simulator.stats.requests).toBe(0);
	}, 60_000);
});

describe('the scheduled reconcile (timer Function)', () => {
	it('reads the manifest blob, logs the drift and, with apply, enqueues the fix', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b] = ids;
		const container = BlobServiceClient.fromConnectionString(local.azurite.connectionString).getContainerClient('sod-sync');
		await container.createIfNotExists();
		const text = manifest([[a, b, true]]);
		await container.getBlockBlobClient('rules.csv').upload(text, Buffer.byteLength(text));
		const settings = readSettings(environment);
		const reconcileSettings = readReconcileSettings({SOD_MANIFEST_BLOB: 'rules.csv', SOD_RECONCILE_APPLY: 'true'});
		const reports: ReconcileReport[] = [];
		const handler = createReconcileTimerHandler({
			engine: createLinkEngine(settings, staticTokenSource(simulator.token)),
			settings: reconcileSettings,
			readManifestText: manifestBlobReader(settings.storage, reconcileSettings.manifestContainer, reconcileSettings.manifestBlob),
			pairsQueue: new QueueSender(queueService(local.azurite.connectionString).getQueueClient(settings.queueName), 'base64'),
			encoding: 'base64',
			invocationBudgetMs: 30_000,
			readConcurrency: 16,
			onReport: report => reports.push(report),
		});
		const logs: string[] = [];
		const context = new functions.InvocationContext({
			invocationId: 'timer-1',
			functionName: 'reconcileSchedule',
			logHandler: (level, ...args) => logs.push(`${level}: ${args.join(' ')}`),
		});
		await handler({isPastDue: false, schedule: {adjustForDST: false}, scheduleStatus: {last: '', next: '', lastUpdated: ''}}, context);
		expect(logs).toEqual([
			'warning: sod-sync reconcile: 2 packages in scope, 2 links desired, 0 present, 2 missing, 0 extra, enqueued 2 adds and 0 removes in 1 messages (sod-sync/rules.csv)',
		]);
		expect(reports[0]!.missing).toHaveLength(2);
		const [message] = await drainQueue(queueService(local.azurite.connectionString).getQueueClient(settings.queueName));
		expect(JSON.parse(message!)).toMatchObject({action: 'add', correlationId: 'reconcile-timer-1', pairs: expect.any(Array)});
	});

	it('fails, naming the lines, on an invalid manifest blob', async () => {
		const {simulator, environment} = await stack();
		const settings = readSettings(environment);
		const handler = createReconcileTimerHandler({
			engine: createLinkEngine(settings, staticTokenSource(simulator.token)),
			settings: readReconcileSettings({}),
			readManifestText: async () => 'accessPackageId,incompatibleAccessPackageId\nx,y\n',
			pairsQueue: {send: async () => undefined},
			encoding: 'base64',
			invocationBudgetMs: 30_000,
			readConcurrency: 16,
		});
		const context = new functions.InvocationContext({invocationId: 'timer-2', functionName: 'reconcileSchedule'});
		await expect(handler({isPastDue: false, schedule: {adjustForDST: false}, scheduleStatus: {last: '', next: '', lastUpdated: ''}}, context)).rejects.toThrow(
			/sod-sync\/manifest\.csv: 1 invalid rows, nothing reconciled: line 2: accessPackageId "x" is not a GUID/,
		);
		expect(simulator.stats.requests).toBe(0);
	});

	it('runs with the settings of local.settings.sample.json (its storage on this test\'s Azurite ports)', async () => {
		const {simulator, ids} = await stack();
		const [a, b] = ids;
		const sample = JSON.parse(readFileSync(new URL('../../local.settings.sample.json', import.meta.url), 'utf8')) as {Values: Record<string, string>};
		const {blobPort, connectionString} = local.azurite;
		const queuePort = /QueueEndpoint=http:\/\/127\.0\.0\.1:(\d+)/.exec(connectionString)![1]!;
		const environment: Record<string, string> = {
			...sample.Values,
			AzureWebJobsStorage: sample.Values.AzureWebJobsStorage!.replace('127.0.0.1:10000', `127.0.0.1:${blobPort}`).replace('127.0.0.1:10001', `127.0.0.1:${queuePort}`),
			GRAPH_BASE_URL: simulator.baseUrl,
		};
		const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(environment.SOD_MANIFEST_CONTAINER!);
		await container.createIfNotExists();
		const text = manifest([[a, b]]);
		await container.getBlockBlobClient(environment.SOD_MANIFEST_BLOB!).upload(text, Buffer.byteLength(text));
		const handler = createReconcileTimerHandler(reconcileTimerDependencies(environment));
		const logs: string[] = [];
		const context = new functions.InvocationContext({
			invocationId: 'timer-sample',
			functionName: 'reconcileSchedule',
			logHandler: (level, ...args) => logs.push(`${level}: ${args.join(' ')}`),
		});
		await handler({isPastDue: false, schedule: {adjustForDST: false}, scheduleStatus: {last: '', next: '', lastUpdated: ''}}, context);
		expect(logs).toEqual([expect.stringMatching(/^warning: sod-sync reconcile: 2 packages in scope, 1 links desired, 0 present, 1 missing, 0 extra.*\(sod-sync\/manifest\.csv, report only\)$/)]);
	});

	it('with SOD_RECONCILE_APPLY, records what it enqueues as an import in the ledger', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b] = ids;
		const settings = {...environment, SOD_RECONCILE_APPLY: 'true', SOD_MANIFEST_CONTAINER: 'timer-apply'};
		const container = BlobServiceClient.fromConnectionString(local.azurite.connectionString).getContainerClient('timer-apply');
		await container.createIfNotExists();
		const text = manifest([[a, b]]);
		await container.getBlockBlobClient('manifest.csv').upload(text, Buffer.byteLength(text));
		// An engine of its own: the process's shared one was built for an earlier test's simulator.
		const engine = createLinkEngine(readSettings(settings), staticTokenSource(simulator.token));
		const handler = createReconcileTimerHandler({...reconcileTimerDependencies(settings), engine});
		const context = new functions.InvocationContext({invocationId: 'timer-apply', functionName: 'reconcileSchedule', logHandler: () => undefined});
		await handler({isPastDue: false, schedule: {adjustForDST: false}, scheduleStatus: {last: '', next: '', lastUpdated: ''}}, context);
		const before = JSON.parse((await runInProcess(['status', 'reconcile-timer-apply', '--json'], settings)).stdout) as Record<string, unknown>;
		expect(before).toMatchObject({pairs: 1, pending: 1, done: false, state: 'running', source: 'scheduled reconcile of timer-apply/manifest.csv'});
		expect((await runCli(['run', '--until-empty'], settings)).code).toBe(0);
		expect(simulator.allLinks()).toEqual([`${a}/${b}`]);
		const after = JSON.parse((await runInProcess(['status', 'reconcile-timer-apply', '--json'], settings)).stdout) as Record<string, unknown>;
		expect(after).toMatchObject({pairs: 1, pending: 0, done: true, changed: {linked: 1, removed: 0}});
	});

	it('checks its settings, naming them', () => {
		expect(() => readReconcileSettings({SOD_RECONCILE_SCHEDULE: '0 * * * *'})).toThrow(/SOD_RECONCILE_SCHEDULE: '0 \* \* \* \*' is not an NCRONTAB expression/);
		expect(() => readReconcileSettings({SOD_RECONCILE_PRUNE: 'true'})).toThrow(/SOD_RECONCILE_PRUNE: true needs SOD_RECONCILE_APPLY=true/);
		expect(() => readReconcileSettings({SOD_RECONCILE_APPLY: 'yes'})).toThrow(/SOD_RECONCILE_APPLY: 'yes' must be true or false/);
	});
});

describe('sod-sync violations', () => {
	it('lists the users who hold both packages of a rule, with both assignments', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b, c] = ids;
		const alice = {objectId: 'u-alice', displayName: 'Alice', principalName: 'alice@contoso.com'};
		const bob = {objectId: 'u-bob', displayName: 'Bob', principalName: 'bob@contoso.com'};
		const aliceA = simulator.assign(a, alice);
		const aliceB = simulator.assign(b, alice);
		simulator.assign(a, bob); // Bob holds only A.
		simulator.assign(c, bob);
		const result = await runInProcess(['violations', await writeManifest(manifest([[a, b], [a, c]])), '--json'], environment);
		expect(result.code).toBe(3);
		expect(JSON.parse(result.stdout)).toEqual({
			violations: [
				{rule: {accessPackageId: a, incompatibleAccessPackageId: b}, user: alice, assignmentId: aliceA.id, incompatibleAssignmentId: aliceB.id},
				expect.objectContaining({rule: {accessPackageId: a, incompatibleAccessPackageId: c}, user: bob}),
			],
			readFailures: [],
		});
		const text = await runInProcess(['violations', await writeManifest(manifest([[a, b]]))], environment);
		expect(text.stdout).toContain(`${a} + ${b}: Alice <alice@contoso.com> (u-alice); assignments ${aliceA.id} and ${aliceB.id}`);
	});

	it('calls the beta path (accessPackageAssignments) with GRAPH_API_VERSION=beta', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b] = ids;
		const alice = {objectId: 'u-alice', displayName: 'Alice', principalName: 'alice@contoso.com'};
		simulator.assign(a, alice);
		simulator.assign(b, alice);
		const result = await runInProcess(['violations', await writeManifest(manifest([[a, b]])), '--json'], {...environment, GRAPH_API_VERSION: 'beta'});
		expect(result.code).toBe(3);
		expect(simulator.stats.unmatched).toEqual([]);
		const calls = simulator.stats.log.filter(line => line.includes('additionalAccess'));
		expect(calls).toHaveLength(2); // Both ways: holders of A who hold B, and of B who hold A.
		for (const call of calls) {
			expect(call).toMatch(/^GET \/beta\/identityGovernance\/entitlementManagement\/accessPackageAssignments\/additionalAccess\(/);
		}
	});

	it('escapes names from Graph: a guest\'s display name cannot erase or forge lines', async () => {
		const {simulator, ids, environment} = await stack();
		const [a, b] = ids;
		const guest = {objectId: 'u-guest', displayName: 'Mallory\u001B[1A\u001B[2K\rall clear', principalName: 'mallory@fabrikam.com\n0 users hold both'};
		simulator.assign(a, guest);
		simulator.assign(b, guest);
		const result = await runInProcess(['violations', await writeManifest(manifest([[a, b]]))], environment);
		expect(result.code).toBe(3);
		expect(result.stdout).not.toMatch(/[\u001B\r]/);
		expect(result.stdout.split('\n').filter(Boolean)).toHaveLength(2);
		expect(result.stdout).toContain('Mallory\\u001b[1A\\u001b[2K\\u000dall clear <mallory@fabrikam.com\\u000a0 users hold both>');
	});

	it('ends, naming the loop, when a page of violators points back at itself', async () => {
		const {simulator, ids, environment} = await stack({faults: {loopingNextLink: true}});
		const result = await runInProcess(['violations', await writeManifest(manifest([[ids[0], ids[1]]]))], environment);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(/could not read .*: RepeatedNextLink/);
		expect(simulator.stats.requests).toBeLessThanOrEqual(4);
	});

	it('finds a group rule\'s violators through nested membership three levels deep, one page of members at a time', async () => {
		const {simulator, ids, environment} = await stack({pageSize: 2});
		const [a, b] = ids;
		const id = (n: number) => `00000000-0000-4000-c000-${String(n).padStart(12, '0')}`;
		const [outer, middle, inner] = [id(1), id(2), id(3)];
		for (const group of [outer, middle, inner]) {
			simulator.addGroup(group);
		}

		simulator.addMember(outer, middle);
		simulator.addMember(middle, inner);
		const person = (n: number, name: string) => ({user: {id: id(100 + n), displayName: name, userPrincipalName: `${name.toLowerCase()}@contoso.com`}, target: {objectId: id(100 + n), displayName: name, principalName: `${name.toLowerCase()}@contoso.com`}});
		const [carol, dave, erin, frank] = [person(1, 'Carol'), person(2, 'Dave'), person(3, 'Erin'), person(4, 'Frank')];
		for (const {user} of [carol, dave, erin, frank]) {
			simulator.addUser(user);
		}

		simulator.addMember(inner, carol.user.id); // three levels down
		simulator.addMember(middle, carol.user.id); // and again one level up: still one violator
		simulator.addMember(outer, dave.user.id);
		simulator.addMember(inner, erin.user.id); // a member who does not hold A
		for (let n = 0; n < 5; n++) {
			const filler = {id: id(200 + n), displayName: `Filler ${n}`, userPrincipalName: `filler${n}@contoso.com`};
			simulator.addUser(filler);
			simulator.addMember(inner, filler.id);
		}

		const carolA = simulator.assign(a, carol.target);
		const daveA = simulator.assign(a, dave.target);
		simulator.assign(a, frank.target); // holds A, in no group
		simulator.assign(b, erin.target); // in the group, holds another package
		const rules = `accessPackageId,incompatibleAccessPackageId,incompatibleGroupId\n${a},,${outer}\n${a},${b},\n`;
		const result = await runInProcess(['violations', await writeManifest(rules), '--json'], environment);
		expect(result.code, result.stderr).toBe(3);
		expect(JSON.parse(result.stdout)).toEqual({
			violations: [
				{rule: {accessPackageId: a, incompatibleGroupId: outer}, user: {objectId: carol.user.id, displayName: 'Carol', principalName: 'carol@contoso.com'}, assignmentId: carolA.id, incompatibleAssignmentId: null},
				{rule: {accessPackageId: a, incompatibleGroupId: outer}, user: {objectId: dave.user.id, displayName: 'Dave', principalName: 'dave@contoso.com'}, assignmentId: daveA.id, incompatibleAssignmentId: null},
			],
			readFailures: [],
		});
		expect(simulator.stats.unmatched).toEqual([]);
		// The members were read page by page (2 a page), the package's assignments by its documented filter.
		expect(simulator.stats.log.filter(line => line.includes('/transitiveMembers/')).length).toBeGreaterThanOrEqual(4);
		expect(simulator.stats.log).toContainEqual(expect.stringMatching(/^GET \/v1\.0\/identityGovernance\/entitlementManagement\/assignments\?\$filter=accessPackage/));
		const text = await runInProcess(['violations', await writeManifest(rules)], environment);
		expect(text.stdout).toContain(`${a} + group ${outer}: Carol <carol@contoso.com> (${carol.user.id}); assignment ${carolA.id}, member of the group`);

		const beta = await runInProcess(['violations', await writeManifest(rules), '--json'], {...environment, GRAPH_API_VERSION: 'beta'});
		expect(JSON.parse(beta.stdout).violations).toHaveLength(2);
		expect(simulator.stats.unmatched).toEqual([]);
	});

	it('names GroupMember.Read.All when Graph refuses to list a group\'s members', async () => {
		const {simulator, ids, environment} = await stack();
		const group = '00000000-0000-4000-c000-000000000001';
		simulator.addGroup(group);
		simulator.assign(ids[0], {objectId: '00000000-0000-4000-c000-000000000101', displayName: 'Carol', principalName: 'carol@contoso.com'});
		simulator.script({path: /\/transitiveMembers\//, reply: graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'), times: 10});
		const result = await runInProcess(['violations', await writeManifest(`accessPackageId,incompatibleGroupId\n${ids[0]},${group}\n`)], environment);
		expect(result.code).toBe(1);
		expect(result.stdout).toContain(`could not read ${ids[0]} + group ${group}: 403 Authorization_RequestDenied Insufficient privileges to complete the operation. (reading a group's members needs the application permission GroupMember.Read.All: sod-sync grant <identity> --group-members)`);
	});

	it('exits 0 when nobody holds both', async () => {
		const {ids, environment} = await stack();
		const result = await runInProcess(['violations', await writeManifest(manifest([[ids[0], ids[1]]]))], environment);
		expect(result.code).toBe(0);
		expect(result.stdout).toMatch(/^0 users hold both sides of a rule \(1 rules checked\)/);
	});
});
