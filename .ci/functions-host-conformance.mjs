// Conformance check under Microsoft's real Node.js Functions worker (../shared/functions-host drives it), run by .ci/run
// after `npm test` when that folder is there. It needs the build (npm test makes it). Checks:
//  1. the functions and bindings the worker indexes are the ones the README's "Functions and bindings" table documents;
//  2. the same messages (valid pairs, invalid rows, an unknown package, a duplicate, an existing link, a double-encoded
//     message, text that is not JSON, JSON of the wrong shape, group rules: new, existing, to an unknown group, and
//     symmetric) reach the same end state through the real worker as through `sod-sync run`: the same links and group
//     links, the same dead letters (reason, pair, kept message text), nothing poisoned;
//  3. a 401 hands the message back to the host each time, and after maxDequeueCount deliveries it is in <queue>-poison.
// Everything runs on loopback (Azurite from node_modules, the Graph simulator) and is stopped at the end.

import {spawn} from 'node:child_process';
import {createServer} from 'node:http';
import {copyFile, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import {TableClient} from '@azure/data-tables';
import {QueueServiceClient} from '@azure/storage-queue';
import {startAzurite} from '../dist/src/local/azurite.js';
import {importStatus} from '../dist/src/ledger/ledger.js';
import {ledgerTableName, TableLedgerStore} from '../dist/src/ledger/ledger-store.js';
import {GraphSimulator} from '../dist/src/simulator/graph-simulator.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const hostTool = resolve(root, process.argv[2] ?? '../shared/functions-host/functions-host.mjs');
const cli = join(root, 'dist/src/cli/main.js');
const started = Date.now();
const failures = [];
const check = (ok, what) => {
	process.stdout.write(`${ok ? 'ok  ' : 'FAIL'} ${what}\n`);
	if (!ok) {
		failures.push(what);
	}
};

function run(command, args, environment, timeoutMs = 60_000) {
	return new Promise((resolvePromise, reject) => {
		const child = spawn(command, args, {cwd: root, env: {...process.env, ...environment}, stdio: ['ignore', 'pipe', 'pipe']});
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', chunk => (stdout += chunk));
		child.stderr.on('data', chunk => (stderr += chunk));
		const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
		child.once('error', reject);
		child.once('exit', code => {
			clearTimeout(timer);
			resolvePromise({code, stdout, stderr});
		});
	});
}

async function drain(queue) {
	const texts = [];
	if (!(await queue.exists())) {
		return texts;
	}

	for (;;) {
		const {receivedMessageItems: items} = await queue.receiveMessages({numberOfMessages: 32, visibilityTimeout: 60});
		if (items.length === 0) {
			return texts;
		}

		for (const item of items) {
			texts.push(Buffer.from(item.messageText, 'base64').toString('utf8'));
			await queue.deleteMessage(item.messageId, item.popReceipt);
		}
	}
}

/** The app as Azure gets it, in a folder of its own: package.json, dist, node_modules, and host.json with `queues`. */
async function appFolder(work, name, queues) {
	const app = join(work, name);
	await run('mkdir', ['-p', app], {});
	await copyFile(join(root, 'package.json'), join(app, 'package.json'));
	const hostJson = JSON.parse(await readFile(join(root, 'host.json'), 'utf8'));
	hostJson.extensions.queues = {...hostJson.extensions.queues, ...queues};
	await writeFile(join(app, 'host.json'), JSON.stringify(hostJson, null, 2));
	await symlink(join(root, 'dist'), join(app, 'dist'));
	await symlink(join(root, 'node_modules'), join(app, 'node_modules'));
	return app;
}

const azurite = await startAzurite({blob: true, table: true});
const simulators = [];
const work = await mkdtemp(join(tmpdir(), 'sod-sync-conformance-'));
try {
	const service = QueueServiceClient.fromConnectionString(azurite.connectionString);
	const ledger = new TableLedgerStore(TableClient.fromConnectionString(azurite.connectionString, ledgerTableName, {allowInsecureConnection: true}));
	const sample = JSON.parse(await readFile(join(root, 'local.settings.sample.json'), 'utf8')).Values;
	const baseEnvironment = {...sample, AzureWebJobsStorage: azurite.connectionString, SOD_RETRY_BASE_MS: '20'};
	const app = await appFolder(work, 'app', {maxPollingInterval: '00:00:01'});
	const hostArgs = (environment, ...rest) => [
		hostTool,
		...rest,
		'--app',
		app,
		...Object.entries(environment).flatMap(([key, value]) => ['--env', `${key}=${value}`]),
	];

	// 1. Indexing, against the README's table.
	const metadata = await run(process.execPath, hostArgs(baseEnvironment, 'metadata'), {});
	check(metadata.code === 0, `the worker loads and indexes the app (exit ${metadata.code})`);
	const indexed = metadata.code === 0 ? JSON.parse(metadata.stdout).functions : [];
	const readme = await readFile(join(root, 'README.md'), 'utf8');
	const table = readme.slice(readme.indexOf('### Functions and bindings'));
	const documented = [...table.matchAll(/^\| `([\w-]+)` \| `(\w+)` \| (.+) \|$/gm)].map(([, name, type, bindings]) => ({
		name,
		type,
		bindings: Object.fromEntries([...bindings.matchAll(/`(\w+): ([^`]+)`/g)].map(([, key, value]) => [key, value])),
	}));
	check(documented.length > 0 && documented.length === indexed.length, `${indexed.length} functions indexed, ${documented.length} documented`);
	// App Service on Linux refuses a setting name with a hyphen, so AzureWebJobs.<name>.Disabled needs a name without one.
	for (const fn of indexed) {
		check(/^[A-Za-z0-9_]+$/.test(fn.name), `${fn.name}: a function name that AzureWebJobs.${fn.name}.Disabled can switch off on Linux`);
	}
	for (const want of documented) {
		const got = indexed.find(fn => fn.name === want.name);
		const trigger = got?.bindings && Object.values(got.bindings).find(binding => binding.direction === 'in' || /Trigger$/.test(binding.type));
		const same = trigger?.type === want.type && Object.entries(want.bindings).every(([key, value]) => trigger[key] === value);
		check(same, `${want.name}: ${want.type} ${JSON.stringify(want.bindings)} (indexed: ${JSON.stringify(trigger)})`);
	}

	// A bad setting stops the app at load, naming it: the worker indexes nothing, so no message is run (or poisoned).
	const misconfigured = await run(process.execPath, hostArgs({...baseEnvironment, GRAPH_BASE_URL: 'http://graph.example.com'}, 'metadata'), {});
	check(
		misconfigured.code !== 0 && /sod-sync cannot start: invalid app settings[\s\S]*GRAPH_BASE_URL/.test(misconfigured.stderr),
		`a bad setting stops the app at load, naming it (exit ${misconfigured.code})`,
	);

	// Metrics over OTLP/HTTP JSON from the Function, to a receiver here: cumulative points, the latest per attribute set.
	const received = [];
	const receiver = createServer((request, response) => {
		let body = '';
		request.on('data', chunk => (body += chunk));
		request.on('end', () => {
			for (const resource of JSON.parse(body).resourceMetrics ?? []) {
				for (const scope of resource.scopeMetrics ?? []) {
					for (const metric of scope.metrics ?? []) {
						for (const point of (metric.sum ?? metric.gauge ?? metric.histogram)?.dataPoints ?? []) {
							const attributes = Object.fromEntries((point.attributes ?? []).map(({key, value}) => [key, value.stringValue ?? value.intValue]));
							// A histogram's point counts its values (sod_sync.message.age: one per message settled).
							const value = metric.histogram ? Number(point.count) : Number(point.asInt ?? point.asDouble);
							received.push({name: metric.name, attributes, value, time: BigInt(point.timeUnixNano)});
						}
					}
				}
			}

			response.writeHead(200, {'content-type': 'application/json'});
			response.end('{}');
		});
	});
	await new Promise(resolve => receiver.listen(0, '127.0.0.1', resolve));
	const otlp = {
		OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.address().port}`,
		OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
		OTEL_METRIC_EXPORT_INTERVAL: '300',
	};
	const latest = (name, attributes) =>
		received
			.filter(point => point.name === name && JSON.stringify(point.attributes) === JSON.stringify(attributes))
			.reduce((last, point) => (last === undefined || point.time >= last.time ? point : last), undefined)?.value;

	// 2. One import, two hosts: the real worker and sod-sync run, each on its own queue and its own (identical) simulator.
	const outcomes = [];
	for (const host of ['functions worker', 'sod-sync run']) {
		const simulator = await GraphSimulator.start({packageCount: 30, seed: 7, faults: {latencyMs: 5, jitterMs: 2}});
		simulators.push(simulator);
		const ids = simulator.packageIds;
		simulator.link(ids[0], ids[1]); // Already there: counted already-linked, not a failure.
		const unknown = '00000000-0000-4000-a000-000000000404';
		const [group1, group2, unknownGroup] = ['00000000-0000-4000-b000-000000000001', '00000000-0000-4000-b000-000000000002', '00000000-0000-4000-b000-000000000404'];
		simulator.addGroup(group1);
		simulator.addGroup(group2);
		simulator.linkGroup(ids[0], group2); // Already there: verified by reading the package's groups back.
		const pairs = ids.flatMap(a => ids.filter(b => b !== a).map(b => ({accessPackageId: a, incompatibleAccessPackageId: b}))).slice(0, 300);
		const queueName = `conformance-${host === 'sod-sync run' ? 'local' : 'worker'}`;
		const environment = {
			...baseEnvironment,
			SOD_QUEUE: queueName,
			SOD_DEAD_LETTER_QUEUE: `${queueName}-dead`,
			GRAPH_BASE_URL: simulator.baseUrl,
			GRAPH_ACCESS_TOKEN: simulator.token,
		};
		const queue = service.getQueueClient(queueName);
		await queue.createIfNotExists();
		const messages = [
			JSON.stringify({pairs: [...pairs.slice(0, 100), pairs[5], {accessPackageId: 'not-a-guid', incompatibleAccessPackageId: ids[2]}], correlationId: `${queueName}-import`}),
			JSON.stringify({pairs: [...pairs.slice(100, 200), {accessPackageId: ids[3], incompatibleAccessPackageId: unknown}, {accessPackageId: ids[4], incompatibleAccessPackageId: ids[4]}]}),
			JSON.stringify(pairs.slice(200, 290)),
			JSON.stringify(JSON.stringify({pairs: pairs.slice(290)})), // Double-encoded: a JSON string holding the pairs JSON.
			'not json',
			'{ "pairs" : 12345678901234567890 }',
			JSON.stringify({
				pairs: [
					{accessPackageId: ids[5], incompatibleGroupId: group1},
					{accessPackageId: ids[0], incompatibleGroupId: group2},
					{accessPackageId: ids[6], incompatibleGroupId: unknownGroup},
				],
				correlationId: `${queueName}-groups`,
			}),
			JSON.stringify({pairs: [{accessPackageId: ids[7], incompatibleGroupId: group1}], symmetric: true}), // A group has no list to link back from.
		];
		for (const text of messages) {
			await queue.sendMessage(Buffer.from(text, 'utf8').toString('base64'));
		}

		const result =
			host === 'sod-sync run'
				? await run(process.execPath, [cli, 'run', '--until-empty'], environment)
				: await run(process.execPath, hostArgs({...environment, ...otlp}, 'run', '--until-empty', '--seconds', '40'), {});
		check(result.code === 0, `${host}: exit ${result.code}${result.code === 0 ? '' : `\n${result.stdout}\n${result.stderr}`.slice(-3000)}`);
		const deadLetters = (await drain(service.getQueueClient(`${queueName}-dead`)))
			.map(text => JSON.parse(text))
			.map(record => `${record.reason} ${JSON.stringify(record.pair)} ${record.message ?? ''}`)
			.sort();
		const poisoned = await drain(service.getQueueClient(`${queueName}-poison`));
		// The import ledger, as the host's invocation wrote it: the message's row, accounted against the pre-image.
		const settlements = await ledger.readSettlements(`${queueName}-import`);
		const accounted = importStatus(`${queueName}-import`, undefined, settlements, new Date());
		const groupSettlements = await ledger.readSettlements(`${queueName}-groups`);
		const groupsAccounted = importStatus(`${queueName}-groups`, undefined, groupSettlements, new Date());
		outcomes.push({
			host,
			links: simulator.allLinks(),
			groupLinks: simulator.allGroupLinks(),
			expectedGroupLinks: [`${ids[0]}/${group2}`, `${ids[5]}/${group1}`].sort(),
			deadLetters,
			poisoned,
			expected: pairs.length,
			ledger: {messages: settlements.length, outcomes: accounted.outcomes},
			groupLedger: {messages: groupSettlements.length, outcomes: groupsAccounted.outcomes, changed: groupsAccounted.changed},
		});
	}

	const [worker, local] = outcomes;
	check(worker.links.length === worker.expected, `functions worker: ${worker.links.length} links (expected ${worker.expected})`);
	check(JSON.stringify(worker.links) === JSON.stringify(local.links), 'the same links through the real worker as through sod-sync run');
	check(JSON.stringify(worker.groupLinks) === JSON.stringify(worker.expectedGroupLinks), `functions worker: the group links ${JSON.stringify(worker.groupLinks)}`);
	check(JSON.stringify(worker.groupLinks) === JSON.stringify(local.groupLinks), 'the same group links through the real worker as through sod-sync run');
	check(worker.deadLetters.length === 7, `functions worker: ${worker.deadLetters.length} dead letters (invalid pair, not-found, same ids, not json, wrong shape, unknown group, symmetric group rule)`);
	check(worker.deadLetters.some(line => line.startsWith('not-found {"accessPackageId":') && line.includes('"incompatibleGroupId":"00000000-0000-4000-b000-000000000404"')), 'a group rule to an unknown group is dead-lettered not-found, its pair under incompatibleGroupId');
	const groupLedgerExpected = JSON.stringify({messages: 1, outcomes: {linked: 1, 'already-linked': 1, removed: 0, 'already-absent': 0, 'dead-letter': 1, requeued: 0}, changed: {linked: 1, removed: 0}});
	check(JSON.stringify(worker.groupLedger) === groupLedgerExpected, `functions worker: the ledger accounts for the group rules against the groups' pre-image: ${JSON.stringify(worker.groupLedger)}`);
	check(JSON.stringify(local.groupLedger) === groupLedgerExpected, `sod-sync run: the same group ledger row: ${JSON.stringify(local.groupLedger)}`);
	check(JSON.stringify(worker.deadLetters) === JSON.stringify(local.deadLetters), `the same dead letters:\n  worker: ${worker.deadLetters.join('\n          ')}\n  local:  ${local.deadLetters.join('\n          ')}`);
	// Text that is not JSON reaches the handler as it was sent; JSON of the wrong shape reaches it parsed (by
	// @azure/functions, in the item and in triggerMetadata.queueTrigger alike), so its record holds the re-serialisation.
	check(worker.deadLetters.some(line => line === 'invalid-message null not json'), 'an invalid-message record keeps text that is not JSON byte for byte');
	check(worker.deadLetters.some(line => line === 'invalid-message null {"pairs":12345678901234567000}'), 'JSON of the wrong shape is kept as the worker hands it over (parsed)');
	check(worker.poisoned.length === 0 && local.poisoned.length === 0, 'nothing poisoned');
	const ledgerExpected = JSON.stringify({messages: 1, outcomes: {linked: 99, 'already-linked': 1, removed: 0, 'already-absent': 0, 'dead-letter': 1, requeued: 0}});
	check(JSON.stringify(worker.ledger) === ledgerExpected, `functions worker: the ledger holds the message with a correlation id, exactly: ${JSON.stringify(worker.ledger)}`);
	check(JSON.stringify(local.ledger) === ledgerExpected, `sod-sync run: the same ledger row: ${JSON.stringify(local.ledger)}`);
	receiver.close();
	const names = new Set(received.map(point => point.name));
	check(
		['sod_sync.pairs', 'sod_sync.graph.operations', 'sod_sync.instances', 'sod_sync.message.age', 'sod_sync.queue.messages'].every(name => names.has(name)),
		`functions worker: exports its metrics over OTLP (${[...names].join(', ') || 'none received'})`,
	);
	// By kind of rule: one link and one group link were there before.
	const linkedExported = latest('sod_sync.pairs', {outcome: 'linked', kind: 'package'});
	check(linkedExported === worker.links.length - 1, `functions worker: sod_sync.pairs linked (package rules) ${linkedExported}, the links it made ${worker.links.length - 1}`);
	const groupsExported = latest('sod_sync.pairs', {outcome: 'linked', kind: 'group'});
	check(groupsExported === worker.groupLinks.length - 1, `functions worker: sod_sync.pairs linked (group rules) ${groupsExported}, the group links it made ${worker.groupLinks.length - 1}`);
	check(latest('sod_sync.pairs', {outcome: 'dead-letter', reason: 'not-found', kind: 'package'}) === 1, 'functions worker: sod_sync.pairs dead-letter not-found 1 (package rules)');
	check(latest('sod_sync.pairs', {outcome: 'dead-letter', reason: 'not-found', kind: 'group'}) === 1, 'functions worker: sod_sync.pairs dead-letter not-found 1 (group rules)');

	// 3. A 401: the invocation fails, the host hands the message back, and poisons it after maxDequeueCount.
	const strict = await GraphSimulator.start({packageCount: 4, seed: 3, token: 'the-right-token'});
	simulators.push(strict);
	const quickApp = await appFolder(work, 'quick-app', {visibilityTimeout: '00:00:01', maxPollingInterval: '00:00:01', maxDequeueCount: 3});
	const queueName = 'conformance-unauthorized';
	await service.getQueueClient(queueName).createIfNotExists();
	const [a, b] = strict.packageIds;
	await service.getQueueClient(queueName).sendMessage(Buffer.from(JSON.stringify({accessPackageId: a, incompatibleAccessPackageId: b})).toString('base64'));
	const environment = {...baseEnvironment, SOD_QUEUE: queueName, SOD_DEAD_LETTER_QUEUE: `${queueName}-dead`, GRAPH_BASE_URL: strict.baseUrl, GRAPH_ACCESS_TOKEN: 'a-wrong-token'};
	const unauthorized = await run(
		process.execPath,
		[hostTool, 'run', '--app', quickApp, '--until-empty', '--seconds', '30', ...Object.entries(environment).flatMap(([key, value]) => ['--env', `${key}=${value}`])],
		{},
	);
	const failuresSeen = (unauthorized.stdout.match(/ dequeue \d+ Failure /g) ?? []).length;
	check(failuresSeen === 3, `401: ${failuresSeen} failed deliveries (maxDequeueCount 3)`);
	check(/Graph refused the credential \(401\)[^\n]*will be retried/.test(unauthorized.stderr), '401: one clear error line per delivery');
	check((await drain(service.getQueueClient(`${queueName}-poison`))).length === 1, '401: the message is in the poison queue');
	check((await drain(service.getQueueClient(`${queueName}-dead`))).length === 0, '401: no dead letter');
	check(strict.allLinks().length === 0 && !unauthorized.stderr.includes('a-wrong-token'), '401: nothing linked, the token never logged');
} finally {
	await Promise.all(simulators.map(simulator => simulator.close()));
	await azurite.stop();
	await rm(work, {recursive: true, force: true});
}

process.stdout.write(`functions-host conformance: ${failures.length === 0 ? 'passed' : `${failures.length} failed`} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
