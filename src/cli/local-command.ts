// `sod-sync local` (npm run local): the whole pipeline on this machine, with no Azure account. Starts Azurite and the
// Graph simulator (throttling and failing like Graph), enqueues the sample import through `enqueue`, adds two messages
// as a careless producer would send them, runs the queue host until the queue is empty, prints what happened and the
// dead letters with their reasons, and stops everything it started.

import {fileURLToPath} from 'node:url';
import {parseArgs} from 'node:util';
import {startAzurite} from '../local/azurite.js';
import {listDeadLetters} from '../queue/dead-letter-queue.js';
import {readSettings} from '../config/settings.js';
import {exitCodes, UsageError, type CommandIo} from './command-line.js';
import {DeadLetterSummary} from './dead-letters-command.js';
import {enqueueCommand} from './enqueue-command.js';
import {describeRun, runQueueHost} from './run-command.js';
import {describeSimulatorStats, startSimulator} from './simulate-graph-command.js';
import {openAppStorage} from '../queue/app-storage.js';
import {openLedgerStore} from '../ledger/open-ledger.js';
import {describeStatus, readImportLedger} from './ledger-commands.js';

export const localHelp = `Usage: sod-sync local [--import FILE] [--tenant FILE]

Runs sod-sync end to end on this machine: Azurite (in memory) and the Graph simulator (50 operations/s, a penalty
window, 1% 5xx, 1% dropped connections after the write), enqueues the import, runs the worker until the queue is empty,
then prints the outcome table, the dead letters and the import's status from the ledger. Stops everything it started.

Options:
  --import FILE              pairs to enqueue (default samples/sample-import.csv)
  --tenant FILE              the simulated tenant (default samples/tenant.json)`;

const samples = (name: string) => fileURLToPath(new URL(`../../../samples/${name}`, import.meta.url));

export async function localCommand(args: string[], io: CommandIo): Promise<number> {
	let values: {import?: string; tenant?: string; help?: boolean};
	try {
		({values} = parseArgs({args, options: {import: {type: 'string'}, tenant: {type: 'string'}, help: {type: 'boolean', short: 'h'}}}));
	} catch (error) {
		throw new UsageError((error as Error).message);
	}

	if (values.help) {
		io.stdout.write(`${localHelp}\n`);
		return exitCodes.ok;
	}

	const importPath = values.import ?? samples('sample-import.csv');
	const say = (text = '') => io.stdout.write(`${text}\n`);
	const azurite = await startAzurite({blob: true, table: true});
	const simulator = await startSimulator(
		{
			throttle: {operationsPerSecond: 50, retryAfter: 'seconds', retryAfterSeconds: 1, penaltyWindow: true},
			faults: {serverErrorRate: 0.01, resetAfterWriteRate: 0.01, latencyMs: 40, jitterMs: 20},
			duplicateAddStatus: 400,
		},
		values.tenant ?? samples('tenant.json'),
	);
	try {
		const environment = {
			...io.environment,
			AzureWebJobsStorage: azurite.connectionString,
			GRAPH_BASE_URL: simulator.baseUrl,
			GRAPH_ACCESS_TOKEN: simulator.token,
			SOD_QUEUE: 'sod-pairs',
			SOD_DEAD_LETTER_QUEUE: 'sod-pairs-dead-letter',
		};
		const localIo: CommandIo = {...io, environment};
		say(`Azurite:         ${azurite.connectionString.match(/QueueEndpoint=([^;]+)/)?.[1]} (in memory)`);
		say(`Graph simulator: ${simulator.baseUrl} (${simulator.packageIds.length} access packages; 50 operations/s, 1% 5xx, 1% dropped connections)`);
		say();
		say(`$ sod-sync enqueue ${importPath} --skip-invalid`);
		const enqueued = await enqueueCommand([importPath, '--skip-invalid', '--correlation-id', 'local-demo'], {...localIo, stderr: io.stdout});
		if (enqueued !== exitCodes.ok) {
			return enqueued;
		}

		// What a careless producer (a Logic App, an Event Grid subscription) might send: the worker must dead-letter these.
		const settings = readSettings(environment);
		const storage = openAppStorage(settings);
		const pairsQueue = storage.pairs;
		const [first] = simulator.packageIds as [string];
		await pairsQueue.send(
			JSON.stringify({id: 'evt-1', eventType: 'Contoso.SoD.RuleAdded', subject: 'rules', dataVersion: '1.0', eventTime: new Date().toISOString(), data: {accessPackageId: first, incompatibleAccessPackageId: first.toUpperCase()}}),
		);
		await pairsQueue.send('accessPackageId=1;incompatibleAccessPackageId=2');
		say('sent 2 producer messages: an Event Grid event holding a self-pair, and a message that is not JSON');
		say();
		say('$ sod-sync run --until-empty');
		const run = await runQueueHost(localIo, {}, {untilEmpty: true, environment});
		say(describeRun(run, run.elapsedMs));
		say();
		say(describeSimulatorStats(simulator));
		say();
		say('$ sod-sync dead-letters list');
		const summary = new DeadLetterSummary();
		await listDeadLetters(storage.queue(settings.deadLetterQueueName), storage.encoding, message => summary.add(message));
		io.stdout.write(summary.describe(settings.deadLetterQueueName));
		say();
		say('$ sod-sync status local-demo');
		const store = openLedgerStore(settings, line => io.stderr.write(`${line}\n`));
		if (store) {
			say(describeStatus((await readImportLedger(store, 'local-demo')).status));
		}

		say();
		say('Everything above ran against local stand-ins; point GRAPH_BASE_URL and AzureWebJobsStorage at real ones to do it for real.');
		return exitCodes.ok;
	} finally {
		await simulator.close();
		await azurite.stop();
	}
}
