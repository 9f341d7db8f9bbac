// npm run bench: sod-sync against the job written straight from the SDK docs, side by side, in one sitting, on the
// project's Graph simulator in a process of its own (so its CPU is not counted against the worker). Prints a table and
// each target's verdict, and writes both, with the machine's description, to bench/results/latest.{md,json}.
// Every run checks the end state: every pair linked, nothing dead-lettered.

import {spawn} from 'node:child_process';
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {cpus, release, tmpdir, totalmem} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath, pathToFileURL} from 'node:url';
import {parseArgs} from 'node:util';
import {QueueServiceClient} from '@azure/storage-queue';
import {startAzurite, type RunningAzurite} from '../src/local/azurite.js';
import {MessagePacker} from '../src/message/message.js';
import {encodeMessage} from '../src/queue/storage-queue.js';
import {timelineBinMs, type SimulatorStats} from '../src/simulator/graph-simulator.js';
import {defaults, readSettings} from '../src/config/settings.js';
import {staticTokenSource} from '../src/graph/graph-client.js';
import {createLinkEngine} from '../src/worker/worker-runtime.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'dist/src/cli/main.js');
const baselineScript = join(root, 'dist/bench/baseline.js');
const usageReporter = join(root, 'dist/bench/usage-reporter.js');
const concurrency = defaults.graphMaxConcurrency;
const batchSize = defaults.graphBatchSize;

interface Scenario {
	name: string;
	what: string;
	pairs: number;
	packages: number;
	simulator: string[];
	/** Pairs per second no client can beat. */
	ceiling: number;
	ceilingText: string;
	/** `sod-sync run` processes (the baseline splits the pairs over as many processes). */
	hosts: number;
	/** Settings for the `sod-sync run` processes beyond the defaults. */
	environment?: Record<string, string>;
	/** Whether the SDK-docs baseline runs too (the scale-out scenarios compare sod-sync builds instead). Defaults to true. */
	baseline?: boolean;
	/** Whether sod-sync also runs with the import ledger off, beside it on: the ledger's cost, side by side. */
	ledgerCost?: boolean;
	/** Whether sod-sync also runs exporting its metrics (OTLP/protobuf to a local sink, every second), beside it off. */
	metricsCost?: boolean;
}

const scenarios: Scenario[] = [
	{
		name: 'latency-bound',
		what: '100 +/- 20 ms per request, no throttling',
		pairs: 5000,
		packages: 80,
		simulator: ['--rate', '0', '--latency', '100', '--jitter', '20'],
		ceiling: (concurrency * batchSize) / 0.1,
		ceilingText: `GRAPH_MAX_CONCURRENCY x 20 / 100 ms = ${(concurrency * batchSize) / 0.1}`,
		hosts: 1,
		ledgerCost: true,
		metricsCost: true,
	},
	{
		name: 'rate-throttled',
		what: '400 operations/s (1 s burst), Retry-After: 1, 30 +/- 20 ms',
		pairs: 8000,
		packages: 100,
		simulator: ['--rate', '400', '--burst', '400', '--retry-after-seconds', '1', '--no-penalty', '--latency', '30', '--jitter', '20'],
		ceiling: 400,
		ceilingText: 'the budget, 400',
		hosts: 1,
		ledgerCost: true,
		metricsCost: true,
	},
	{
		name: 'penalty-window',
		what: '400 operations/s (1 s burst), Retry-After: 2, early calls extend the window (Dev Proxy), 30 +/- 20 ms',
		pairs: 4000,
		packages: 70,
		simulator: ['--rate', '400', '--burst', '400', '--retry-after-seconds', '2', '--latency', '30', '--jitter', '20'],
		ceiling: 400,
		ceilingText: 'the budget, 400',
		hosts: 1,
	},
	{
		name: 'early-warning',
		what: 'penalty-window, with Graph\'s early warning (x-ms-throttle-limit-percentage once 80% of the bucket is spent)',
		pairs: 4000,
		packages: 70,
		simulator: ['--rate', '400', '--burst', '400', '--retry-after-seconds', '2', '--latency', '30', '--jitter', '20', '--limit-warnings'],
		ceiling: 400,
		ceilingText: 'the budget, 400',
		hosts: 1,
	},
	{
		name: 'faulty',
		what: '5% 5xx, 1% connections dropped after the write, 50 ms, no throttling',
		pairs: 5000,
		packages: 80,
		simulator: ['--rate', '0', '--server-errors', '0.05', '--resets', '0.01', '--latency', '50', '--jitter', '0'],
		ceiling: (concurrency * batchSize) / 0.05,
		ceilingText: `GRAPH_MAX_CONCURRENCY x 20 / 50 ms = ${(concurrency * batchSize) / 0.05}`,
		hosts: 1,
	},
	{
		name: 'scale-out',
		what: 'three processes on one queue sharing 400 operations/s (1 s burst), Retry-After: 1, 30 +/- 20 ms',
		pairs: 8000,
		packages: 100,
		simulator: ['--rate', '400', '--burst', '400', '--retry-after-seconds', '1', '--no-penalty', '--latency', '30', '--jitter', '20'],
		ceiling: 400,
		ceilingText: 'the shared budget, 400',
		hosts: 3,
		ledgerCost: true,
	},
	{
		name: 'scale-out-6',
		what: 'six processes on one queue sharing 400 operations/s (1 s burst), Retry-After: 1, 30 +/- 20 ms',
		pairs: 12_000,
		packages: 120,
		simulator: ['--rate', '400', '--burst', '400', '--retry-after-seconds', '1', '--no-penalty', '--latency', '30', '--jitter', '20'],
		ceiling: 400,
		ceilingText: 'the shared budget, 400',
		hosts: 6,
		baseline: false,
	},
	{
		name: 'sustained-throttle',
		what: `six processes sharing 50 operations/s (1 s burst), Retry-After: 1; SOD_INVOCATION_BUDGET_SECONDS=15, SOD_MAX_ATTEMPTS=3 (the production defaults' ratio of work held to work served, scaled down)`,
		pairs: 4000,
		packages: 70,
		simulator: ['--rate', '50', '--burst', '50', '--retry-after-seconds', '1', '--no-penalty', '--latency', '30', '--jitter', '20'],
		ceiling: 50,
		ceilingText: 'the shared budget, 50',
		hosts: 6,
		environment: {SOD_INVOCATION_BUDGET_SECONDS: '15', SOD_MAX_ATTEMPTS: '3'},
		baseline: false,
	},
	{
		name: 'scale-out-penalty',
		what: 'six processes sharing 100 operations/s (1 s burst), Retry-After: 1, early calls extend the window; SOD_INVOCATION_BUDGET_SECONDS=15, SOD_MAX_ATTEMPTS=3',
		pairs: 3000,
		packages: 60,
		simulator: ['--rate', '100', '--burst', '100', '--retry-after-seconds', '1', '--latency', '30', '--jitter', '20'],
		ceiling: 100,
		ceilingText: 'the shared budget, 100',
		hosts: 6,
		environment: {SOD_INVOCATION_BUDGET_SECONDS: '15', SOD_MAX_ATTEMPTS: '3'},
		baseline: false,
	},
	{
		name: 'outage',
		what: 'Graph refuses connections for 60 s from its first request (which is dropped), then answers in 100 ms; defaults',
		pairs: 500,
		packages: 30,
		simulator: ['--rate', '0', '--latency', '100', '--jitter', '0', '--outage-after-seconds', '0', '--outage-seconds', '60'],
		ceiling: Number.NaN,
		ceilingText: 'none (what counts is that nothing is dead-lettered)',
		hosts: 1,
		baseline: false,
	},
];

type Contender = 'baseline' | 'sod-sync' | 'sod-sync before' | 'sod-sync, ledger off' | 'sod-sync, metrics on';

interface Usage {
	cpuMs: number;
	maxRssKb: number;
}

interface Measurement {
	scenario: string;
	contender: Contender;
	pairs: number;
	linked: number;
	lost: number;
	deadLettered: number;
	seconds: number;
	wallSeconds: number;
	pairsPerSecond: number;
	ratio: number;
	requestsPerPair: number;
	throttledPer1000: number;
	cpuMsPer1000: number;
	netCpuMsPer1000: number;
	peakRssMb: number;
}

async function main(): Promise<void> {
	const {values} = parseArgs({
		options: {
			only: {type: 'string', multiple: true},
			'skip-enqueue': {type: 'boolean'},
			'skip-reconcile': {type: 'boolean'},
			'skip-cold-start': {type: 'boolean'},
			'compare-with': {type: 'string'},
			logs: {type: 'string'},
		},
	});
	// Another built checkout (npm ci && npm run build in it) runs the same scenarios beside this one, in the same sitting
	// (its rows are 'sod-sync before'; its commit is worth naming wherever the figures are quoted).
	const beforeCli = values['compare-with'] === undefined ? undefined : join(values['compare-with'], 'dist/src/cli/main.js');
	logDirectory = values.logs;
	if (logDirectory) {
		await mkdir(logDirectory, {recursive: true});
	}

	const chosen = scenarios.filter(scenario => !values.only || values.only.includes(scenario.name));
	const azurite = await startAzurite({blob: true, table: true});
	const sink = await startMetricsSink();
	const work = await mkdtemp(join(tmpdir(), 'sod-sync-bench-'));
	try {
		process.stdout.write(`sod-sync benchmark on ${machine()}\n\n`);
		const idle = {
			'sod-sync': await idleUsage(azurite, work),
			baseline: await measureProcess([baselineScript, await writePairs(work, 'none', []), String(concurrency)], {GRAPH_BASE_URL: 'http://127.0.0.1:9'}, work),
		};
		const measurements: Measurement[] = [];
		for (const scenario of chosen) {
			const contenders: Contender[] = [
				...(scenario.baseline === false ? [] : (['baseline'] as const)),
				...(beforeCli ? (['sod-sync before'] as const) : []),
				...(scenario.ledgerCost ? (['sod-sync, ledger off'] as const) : []),
				...(scenario.metricsCost ? (['sod-sync, metrics on'] as const) : []),
				'sod-sync',
			];
			for (const contender of contenders) {
				process.stdout.write(`${scenario.name} / ${contender} ...`);
				const usage = idle[contender === 'baseline' ? 'baseline' : 'sod-sync'].usage;
				// eslint-disable-next-line no-await-in-loop
				const measurement = await runScenario(scenario, contender, azurite, work, usage, contender === 'sod-sync before' ? beforeCli! : cli);
				measurements.push(measurement);
				process.stdout.write(
					` ${measurement.pairsPerSecond.toFixed(0)} pairs/s (${Number.isFinite(measurement.ratio) ? measurement.ratio.toFixed(2) : '-'} of ceiling), ${(measurement.throttledPer1000 / 10).toFixed(1)}% 429s, ${measurement.lost} not linked, ${measurement.deadLettered} dead-lettered, ${measurement.wallSeconds.toFixed(0)} s\n`,
				);
			}
		}

		const engine = await measureEngineCpu(values['compare-with'] === undefined ? undefined : await engineFactoryOf(values['compare-with']));
		const coldStart = values['skip-cold-start'] ? [] : await measureColdStart(azurite, work);
		const enqueue = values['skip-enqueue'] ? undefined : await measureEnqueue(azurite, work);
		const reconciles = [];
		if (!values['skip-reconcile']) {
			for (const [contender, contenderCli] of [...(beforeCli ? [['sod-sync before', beforeCli] as const] : []), ['sod-sync', cli] as const]) {
				// eslint-disable-next-line no-await-in-loop
				reconciles.push({contender, ...(await measureReconcile(azurite, work, contender, contenderCli))});
			}
		}

		const report = describe(chosen, measurements, engine, enqueue, reconciles, coldStart);
		process.stdout.write(`\n${report.markdown}\n`);
		// Only a full run replaces the results the README quotes; a partial one (--only, --skip-*) just prints.
		if (values.only || values['skip-enqueue'] || values['skip-reconcile'] || values['skip-cold-start']) {
			process.stdout.write('partial run: bench/results/ left as it was\n');
		} else {
			await writeFile(join(root, 'bench/results/latest.md'), report.markdown);
			await writeFile(join(root, 'bench/results/latest.json'), `${JSON.stringify({machine: machine(), measurements, engine, enqueue, reconciles, coldStart, verdicts: report.verdicts}, null, 2)}\n`);
			process.stdout.write('written to bench/results/latest.md and latest.json\n');
		}
	} finally {
		await rm(work, {recursive: true, force: true});
		sink.close();
		await azurite.stop();
	}
}

async function runScenario(
	scenario: Scenario,
	contender: Contender,
	azurite: RunningAzurite,
	work: string,
	idle: Usage,
	hostCli: string,
): Promise<Measurement> {
	const simulator = await startSimulatorProcess(['--packages', String(scenario.packages), ...scenario.simulator]);
	try {
		const pairs = choosePairs(simulator.ids, scenario.pairs);
		const environment = {GRAPH_BASE_URL: simulator.baseUrl, GRAPH_ACCESS_TOKEN: 'sim-token'};
		let usages: Usage[];
		let deadLettered = 0;
		const started = Date.now();
		if (contender === 'baseline') {
			const share = Math.ceil(pairs.length / scenario.hosts);
			const files = await Promise.all(
				Array.from({length: scenario.hosts}, async (_, index) => writePairs(work, `${scenario.name}-${index}`, pairs.slice(index * share, (index + 1) * share))),
			);
			usages = (await Promise.all(files.map(async file => measureProcess([baselineScript, file, String(concurrency)], environment, work)))).map(run => run.usage);
		} else {
			const suffixes: Partial<Record<Contender, string>> = {'sod-sync before': '-before', 'sod-sync, ledger off': '-no-ledger', 'sod-sync, metrics on': '-metrics'};
			const prefix = `bench-${scenario.name}${suffixes[contender] ?? ''}`;
			const queues = {SOD_QUEUE: prefix, SOD_DEAD_LETTER_QUEUE: `${prefix}-dead`};
			const service = QueueServiceClient.fromConnectionString(azurite.connectionString);
			// Each run is an import of its own (the ledger's pre-images are per import).
			await enqueuePairs(service.getQueueClient(queues.SOD_QUEUE), pairs, prefix);
			const hostEnvironment = {
				...environment,
				...scenario.environment,
				...queues,
				AzureWebJobsStorage: azurite.connectionString,
				...(contender === 'sod-sync, ledger off' ? {SOD_LEDGER_RETENTION_DAYS: '0'} : {}),
				...(contender === 'sod-sync, metrics on' ? metricsEnvironment() : {}),
			};
			usages = (
				await Promise.all(Array.from({length: scenario.hosts}, async () => measureProcess([hostCli, 'run', '--until-empty'], hostEnvironment, work)))
			).map(run => run.usage);
			const dead = service.getQueueClient(queues.SOD_DEAD_LETTER_QUEUE);
			deadLettered = (await dead.exists()) ? ((await dead.getProperties()).approximateMessagesCount ?? 0) : 0;
		}

		const wallSeconds = (Date.now() - started) / 1000;
		const stats = await simulator.stats();
		const links = new Set(await simulator.links());
		const linked = pairs.filter(pair => links.has(`${pair.accessPackageId}/${pair.incompatibleAccessPackageId}`)).length;
		const seconds = Math.max(0.001, (stats.lastWriteAt - stats.firstRequestAt) / 1000);
		if (logDirectory) {
			await writeFile(join(logDirectory, `${scenario.name}-${contender.replaceAll(' ', '-')}-timeline.txt`), timelineText(stats));
		}

		const cpuMs = usages.reduce((sum, usage) => sum + usage.cpuMs, 0);
		return {
			scenario: scenario.name,
			contender,
			pairs: pairs.length,
			linked,
			lost: pairs.length - linked,
			deadLettered,
			seconds,
			wallSeconds,
			pairsPerSecond: linked / seconds,
			ratio: linked / seconds / scenario.ceiling,
			requestsPerPair: stats.requests / pairs.length,
			throttledPer1000: ((stats.byStatus[429] ?? 0) / Math.max(1, stats.operations)) * 1000,
			cpuMsPer1000: (cpuMs / pairs.length) * 1000,
			netCpuMsPer1000: (Math.max(0, cpuMs - idle.cpuMs * usages.length) / pairs.length) * 1000,
			peakRssMb: Math.max(...usages.map(usage => usage.maxRssKb)) / 1024,
		};
	} finally {
		await simulator.stop();
	}
}

/** CPU and memory of `sod-sync run --until-empty` on an empty queue: start-up, SDK loading, one poll. */
/** A local OTLP endpoint that accepts every export and keeps nothing: the exporter's whole cost, none of a collector's. */
let metricsSinkUrl = '';

async function startMetricsSink(): Promise<Server> {
	const server = createServer((request, response) => {
		request.resume();
		request.on('end', () => {
			response.writeHead(200, {'content-type': 'application/x-protobuf'});
			response.end();
		});
	});
	await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
	metricsSinkUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	return server;
}

function metricsEnvironment(): Record<string, string> {
	return {OTEL_EXPORTER_OTLP_ENDPOINT: metricsSinkUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_METRIC_EXPORT_INTERVAL: '1000'};
}

/**
 * Cold start with metrics off and on: `sod-sync run --until-empty` on an empty queue (load, connect, find nothing,
 * export and exit), seven times each, interleaved; the medians of wall time and CPU.
 */
async function measureColdStart(azurite: RunningAzurite, work: string): Promise<Array<{metrics: 'off' | 'on'; wallMs: number; cpuMs: number}>> {
	process.stdout.write('cold start, metrics off / on ...');
	const samples = {off: [] as Array<{wallMs: number; cpuMs: number}>, on: [] as Array<{wallMs: number; cpuMs: number}>};
	const environment = {AzureWebJobsStorage: azurite.connectionString, SOD_QUEUE: 'bench-cold', SOD_DEAD_LETTER_QUEUE: 'bench-cold-dead', GRAPH_BASE_URL: 'http://127.0.0.1:9', GRAPH_ACCESS_TOKEN: 'x'};
	for (let round = 0; round < 7; round++) {
		for (const metrics of ['off', 'on'] as const) {
			const started = Date.now();
			// eslint-disable-next-line no-await-in-loop
			const run = await measureProcess([cli, 'run', '--until-empty'], {...environment, ...(metrics === 'on' ? metricsEnvironment() : {})}, work);
			samples[metrics].push({wallMs: Date.now() - started, cpuMs: run.usage.cpuMs});
		}
	}

	const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
	const result = (['off', 'on'] as const).map(metrics => ({metrics, wallMs: median(samples[metrics].map(item => item.wallMs)), cpuMs: median(samples[metrics].map(item => item.cpuMs))}));
	process.stdout.write(` ${result.map(item => `${item.metrics}: ${item.wallMs} ms wall, ${item.cpuMs.toFixed(0)} ms CPU`).join('; ')}\n`);
	return result;
}

async function idleUsage(azurite: RunningAzurite, work: string): Promise<{usage: Usage}> {
	return measureProcess(
		[cli, 'run', '--until-empty'],
		{AzureWebJobsStorage: azurite.connectionString, SOD_QUEUE: 'bench-idle', SOD_DEAD_LETTER_QUEUE: 'bench-idle-dead', GRAPH_BASE_URL: 'http://127.0.0.1:9', GRAPH_ACCESS_TOKEN: 'x'},
		work,
	);
}

/**
 * The engine alone, in this process (otherwise idle), against a simulator process: 12,000 pairs, 20 ms per request, no
 * throttling, as 32 messages' worth of concurrent runs. CPU per 1,000 pairs, start-up excluded.
 */
/** How a build makes an engine: this checkout's modules, or another built checkout's (`--compare-with`). */
interface EngineFactory {
	readSettings: typeof readSettings;
	staticTokenSource: typeof staticTokenSource;
	createLinkEngine: typeof createLinkEngine;
}

const thisBuild: EngineFactory = {readSettings, staticTokenSource, createLinkEngine};

/** Another built checkout's engine, loaded into this process, so that both are measured side by side. */
async function engineFactoryOf(directory: string): Promise<EngineFactory> {
	const load = async (path: string) => import(pathToFileURL(join(directory, 'dist/src', path)).href) as Promise<Record<string, unknown>>;
	const [settings, client, runtime] = await Promise.all([load('config/settings.js'), load('graph/graph-client.js'), load('worker/worker-runtime.js')]);
	return {
		readSettings: settings.readSettings as EngineFactory['readSettings'],
		staticTokenSource: client.staticTokenSource as EngineFactory['staticTokenSource'],
		createLinkEngine: runtime.createLinkEngine as EngineFactory['createLinkEngine'],
	};
}

/**
 * The engine alone, 12,000 pairs against a simulator that never throttles: CPU per 1,000 pairs in this process, after a
 * run that warms the JIT up (before it did, the figure counted the SDK's and the engine's compilation: ~150 ms). With
 * a build before, each warms up once, then both run twice, interleaved (this, before, before, this), and each figure is
 * the mean of its two.
 */
async function measureEngineCpu(before?: EngineFactory): Promise<{pairs: number; cpuMsPer1000: number; seconds: number; beforeCpuMsPer1000?: number}> {
	const pairCount = 12_000;
	// Each run gets a simulator of its own: a tenant already holding the links would take another path (duplicates).
	const once = async (build: EngineFactory) => {
		const simulator = await startSimulatorProcess(['--packages', '120', '--rate', '0', '--latency', '20', '--jitter', '5']);
		try {
			const pairs = choosePairs(simulator.ids, pairCount);
			const settings = build.readSettings({AzureWebJobsStorage: 'AccountName=bench;QueueEndpoint=http://127.0.0.1:9/bench', GRAPH_BASE_URL: simulator.baseUrl});
			const engine = build.createLinkEngine(settings, build.staticTokenSource('sim-token'));
			const started = Date.now();
			const usage = process.cpuUsage();
			const runs = [];
			for (let start = 0; start < pairs.length; start += 383) {
				runs.push(engine.run(pairs.slice(start, start + 383), 'add', {deadline: Date.now() + 600_000}));
			}

			const outcomes = (await Promise.all(runs)).flat();
			const used = process.cpuUsage(usage);
			const linked = outcomes.filter(outcome => outcome.status === 'linked').length;
			if (linked !== pairs.length) {
				throw new Error(`engine CPU run: ${linked} of ${pairs.length} linked`);
			}

			return {cpuMsPer1000: ((used.user + used.system) / 1000 / pairs.length) * 1000, seconds: (Date.now() - started) / 1000};
		} finally {
			await simulator.stop();
		}
	};

	process.stdout.write(before ? 'engine CPU, this build and the build before, interleaved ...' : 'engine CPU ...');
	const mine = [];
	const theirs = [];
	if (before) {
		// A first run warms the JIT up for the modules both builds share (the SDK): neither build should pay it alone.
		// Then this, before, before, this, so that neither always goes first.
		await once(thisBuild);
		await once(before);
		mine.push(await once(thisBuild));
		theirs.push(await once(before), await once(before));
		mine.push(await once(thisBuild));
	} else {
		await once(thisBuild); // The JIT's warm-up, not counted (as above).
		mine.push(await once(thisBuild));
	}

	const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
	const cpuMsPer1000 = mean(mine.map(run => run.cpuMsPer1000));
	const beforeCpuMsPer1000 = before ? mean(theirs.map(run => run.cpuMsPer1000)) : undefined;
	process.stdout.write(` ${cpuMsPer1000.toFixed(0)} ms per 1,000 pairs${beforeCpuMsPer1000 === undefined ? '' : ` (before: ${beforeCpuMsPer1000.toFixed(0)})`}\n`);
	return {pairs: pairCount, cpuMsPer1000, seconds: mean(mine.map(run => run.seconds)), ...(beforeCpuMsPer1000 === undefined ? {} : {beforeCpuMsPer1000})};
}

/** 1,000,000 CSV rows through `sod-sync enqueue`: its peak RSS must stay flat. */
async function measureEnqueue(azurite: RunningAzurite, work: string): Promise<{rows: number; seconds: number; peakRssMb: number; messages: number}> {
	const rows = 1_000_000;
	const file = join(work, 'million.csv');
	const lines = ['accessPackageId,incompatibleAccessPackageId'];
	const guid = (n: number) => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
	for (let index = 0; index < rows; index++) {
		lines.push(`${guid(index % 2000)},${guid(2000 + Math.floor(index / 2000))}`);
	}

	await writeFile(file, `${lines.join('\n')}\n`);
	process.stdout.write('enqueue of a 1,000,000-row CSV ...');
	const started = Date.now();
	const run = await measureProcess([cli, 'enqueue', file, '--correlation-id', 'bench'], {AzureWebJobsStorage: azurite.connectionString, SOD_QUEUE: 'bench-million'}, work);
	const seconds = (Date.now() - started) / 1000;
	const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient('bench-million');
	const messages = (await queue.getProperties()).approximateMessagesCount ?? 0;
	await queue.delete();
	process.stdout.write(` ${seconds.toFixed(1)} s, peak RSS ${(run.usage.maxRssKb / 1024).toFixed(0)} MB\n`);
	return {rows, seconds, peakRssMb: run.usage.maxRssKb / 1024, messages};
}

/** The bound the README states for that reconcile. */
const reconcilePeakRssMb = 400;

/** Packages in the tenant and rows in the manifest of the reconcile measurement. */
const reconcileTenant = {packages: 20_000, rules: 200_000};

/**
 * `sod-sync reconcile` of a 200,000-row manifest against a tenant of 20,000 packages (Graph answering at once, no
 * throttling): its time and peak RSS. A tenth of the rules are linked already, so the drift is 180,000 missing links.
 */
async function measureReconcile(azurite: RunningAzurite, work: string, contender: string, contenderCli: string): Promise<{packages: number; rules: number; seconds: number; peakRssMb: number; missing: number}> {
	const guid = (n: number) => `${n.toString(16).padStart(8, '0')}-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
	const ids = Array.from({length: reconcileTenant.packages}, (_, index) => guid(index + 1));
	const perPackage = reconcileTenant.rules / ids.length;
	const rules: string[] = [];
	for (let index = 0; index < ids.length; index++) {
		for (let step = 1; step <= perPackage; step++) {
			rules.push(`${ids[index]},${ids[(index + step * 97) % ids.length]}`);
		}
	}

	const links = rules.filter((_, index) => index % 10 === 0).map(rule => {
		const [accessPackageId, incompatibleAccessPackageId] = rule.split(',');
		return {accessPackageId, incompatibleAccessPackageId};
	});
	const tenantFile = join(work, 'reconcile-tenant.json');
	await writeFile(tenantFile, JSON.stringify({packages: ids, links}));
	const simulator = await startSimulatorProcess(['--tenant', tenantFile, '--rate', '0', '--latency', '0', '--jitter', '0']);
	try {
		const file = join(work, 'reconcile-manifest.csv');
		await writeFile(file, `accessPackageId,incompatibleAccessPackageId\n${rules.join('\n')}\n`);
		process.stdout.write(`reconcile of ${rules.length.toLocaleString('en-US')} rules over ${ids.length.toLocaleString('en-US')} packages / ${contender} ...`);
		const started = Date.now();
		const run = await measureProcess([contenderCli, 'reconcile', file], {GRAPH_BASE_URL: simulator.baseUrl, GRAPH_ACCESS_TOKEN: 'sim-token', SOD_INVOCATION_BUDGET_SECONDS: '3600', AzureWebJobsStorage: azurite.connectionString}, work, [3]);
		const seconds = (Date.now() - started) / 1000;
		const missing = Number(/^missing \(([\d,]+)\)$/m.exec(run.output)?.[1]?.replaceAll(',', '') ?? Number.NaN);
		process.stdout.write(` ${seconds.toFixed(1)} s, peak RSS ${(run.usage.maxRssKb / 1024).toFixed(0)} MB, ${missing.toLocaleString('en-US')} missing\n`);
		return {packages: ids.length, rules: rules.length, seconds, peakRssMb: run.usage.maxRssKb / 1024, missing};
	} finally {
		await simulator.stop();
	}
}

function describe(
	chosen: Scenario[],
	measurements: Measurement[],
	engine: Awaited<ReturnType<typeof measureEngineCpu>>,
	enqueue: Awaited<ReturnType<typeof measureEnqueue>> | undefined,
	reconciles: Array<{contender: string} & Awaited<ReturnType<typeof measureReconcile>>> = [],
	coldStart: Awaited<ReturnType<typeof measureColdStart>> = [],
) {
	const find = (scenario: string, contender: string) => measurements.find(m => m.scenario === scenario && m.contender === contender);
	const rows = measurements.map(
		m =>
			`| ${m.scenario} | ${m.contender} | ${m.pairsPerSecond.toFixed(0)} | ${Number.isFinite(m.ratio) ? m.ratio.toFixed(2) : '-'} | ${m.requestsPerPair.toFixed(3)} | ${m.throttledPer1000.toFixed(1)} | ${m.lost} | ${m.deadLettered} | ${m.seconds.toFixed(1)} / ${m.wallSeconds.toFixed(1)} | ${m.cpuMsPer1000.toFixed(0)} / ${m.netCpuMsPer1000.toFixed(0)} | ${m.peakRssMb.toFixed(0)} |`,
	);
	const verdicts: Array<{target: string; figure: string; met: boolean}> = [];
	const target = (name: string, measurement: Measurement | undefined, figure: (m: Measurement) => string, met: (m: Measurement) => boolean) => {
		if (measurement) {
			verdicts.push({target: name, figure: figure(measurement), met: met(measurement)});
		}
	};

	const sod = (name: string) => find(name, 'sod-sync');
	target('rate-throttled: >= 0.90 of the budget', sod('rate-throttled'), m => m.ratio.toFixed(3), m => m.ratio >= 0.9);
	target('rate-throttled: <= 2% of operations answered 429', sod('rate-throttled'), m => `${(m.throttledPer1000 / 10).toFixed(2)}%`, m => m.throttledPer1000 <= 20);
	target('penalty-window: >= 0.90 of the ceiling', sod('penalty-window'), m => m.ratio.toFixed(3), m => m.ratio >= 0.9);
	target('penalty-window: <= 2% of operations answered 429', sod('penalty-window'), m => `${(m.throttledPer1000 / 10).toFixed(2)}%`, m => m.throttledPer1000 <= 20);
	target('early-warning: <= 2% of operations answered 429', sod('early-warning'), m => `${(m.throttledPer1000 / 10).toFixed(2)}%`, m => m.throttledPer1000 <= 20);
	target('early-warning: >= 0.85 of the ceiling', sod('early-warning'), m => m.ratio.toFixed(3), m => m.ratio >= 0.85);
	target('latency-bound: >= 0.80 of the ceiling', sod('latency-bound'), m => m.ratio.toFixed(3), m => m.ratio >= 0.8);
	const baseline = find('latency-bound', 'baseline');
	target('latency-bound: >= 10x the baseline', sod('latency-bound'), m => `${(m.pairsPerSecond / (baseline?.pairsPerSecond ?? Number.NaN)).toFixed(1)}x`, m => m.pairsPerSecond >= 10 * (baseline?.pairsPerSecond ?? Number.POSITIVE_INFINITY));
	target('faulty: 0 lost, 0 wrongly dead-lettered', sod('faulty'), m => `${m.lost} lost, ${m.deadLettered} dead-lettered`, m => m.lost === 0 && m.deadLettered === 0);
	target('faulty: >= 0.7 of the ceiling', sod('faulty'), m => m.ratio.toFixed(3), m => m.ratio >= 0.7);
	for (const name of ['scale-out', 'scale-out-6']) {
		target(`${name}: >= 0.90 of the shared budget`, sod(name), m => m.ratio.toFixed(3), m => m.ratio >= 0.9);
		target(`${name}: <= 2% of operations answered 429`, sod(name), m => `${(m.throttledPer1000 / 10).toFixed(2)}%`, m => m.throttledPer1000 <= 20);
	}

	target('scale-out-penalty: >= 0.90 of the shared budget', sod('scale-out-penalty'), m => m.ratio.toFixed(3), m => m.ratio >= 0.9);
	target('scale-out-penalty: <= 2% of operations answered 429', sod('scale-out-penalty'), m => `${(m.throttledPer1000 / 10).toFixed(2)}%`, m => m.throttledPer1000 <= 20);
	target('outage: every pair linked, none dead-lettered', sod('outage'), m => `${m.linked} linked, ${m.deadLettered} dead-lettered`, m => m.lost === 0 && m.deadLettered === 0);
	verdicts.push({
		target: 'engine CPU <= 50 ms per 1,000 pairs (the engine alone, 12,000 pairs)',
		figure: `${engine.cpuMsPer1000.toFixed(0)} ms${engine.beforeCpuMsPer1000 === undefined ? '' : ` (the build before: ${engine.beforeCpuMsPer1000.toFixed(0)} ms, interleaved in this process)`}`,
		met: engine.cpuMsPer1000 <= 50,
	});
	const sodRuns = measurements.filter(m => m.contender === 'sod-sync');
	if (sodRuns.length > 0) {
		const lost = sodRuns.reduce((sum, m) => sum + m.lost + m.deadLettered, 0);
		verdicts.push({target: 'every scenario: 0 pairs lost or wrongly dead-lettered', figure: String(lost), met: lost === 0});
	}

	if (enqueue) {
		verdicts.push({target: 'enqueue of a 1,000,000-row CSV: peak RSS <= 150 MB', figure: `${enqueue.peakRssMb.toFixed(0)} MB (${enqueue.seconds.toFixed(1)} s, ${enqueue.messages} messages)`, met: enqueue.peakRssMb <= 150});
	}

	for (const run of reconciles.filter(item => item.contender === 'sod-sync')) {
		verdicts.push({
			target: `reconcile of ${run.rules.toLocaleString('en-US')} rules over ${run.packages.toLocaleString('en-US')} packages: peak RSS <= ${reconcilePeakRssMb} MB, drift complete`,
			figure: `${run.peakRssMb.toFixed(0)} MB, ${run.seconds.toFixed(1)} s, ${run.missing.toLocaleString('en-US')} missing`,
			met: run.peakRssMb <= reconcilePeakRssMb && run.missing === run.rules * 0.9,
		});
	}

	// The ledger's cost: the same scenario with the ledger on and off, in the same sitting.
	// The same scenario with a feature off and on, side by side: pairs/s and CPU per 1,000 pairs (and requests per pair).
	const offAndOn = (off: Contender, on: Contender, requests: boolean) =>
		chosen.flatMap(scenario => {
			const [without, withIt] = [find(scenario.name, off), find(scenario.name, on)];
			if (!without || !withIt) {
				return [];
			}

			const pair = (of: (m: Measurement) => number, digits: number, ratio: boolean) =>
				`${of(without).toFixed(digits)} / ${of(withIt).toFixed(digits)}${ratio ? ` (${(of(withIt) / of(without)).toFixed(2)}x)` : ''}`;
			const cells = [pair(m => m.pairsPerSecond, 0, true), pair(m => m.cpuMsPer1000, 0, true), ...(requests ? [pair(m => m.requestsPerPair, 3, false)] : [])];
			return [`| ${scenario.name} | ${cells.join(' | ')} |`];
		});
	const ledgerRows = offAndOn('sod-sync, ledger off', 'sod-sync', true);
	// Metrics' cost: the same scenario exporting (OTLP/protobuf every second to a local sink) and not.
	const metricsRows = offAndOn('sod-sync', 'sod-sync, metrics on', false);
	const coldRows = coldStart.map(item => `| metrics ${item.metrics} | ${item.wallMs} | ${item.cpuMs.toFixed(0)} |`);
	const markdown = [
		`Machine: ${machine()}`,
		'',
		'Scenarios:',
		...chosen.map(s => `- **${s.name}**: ${s.what}; ${s.pairs.toLocaleString('en-US')} pairs; ceiling ${s.ceilingText} pairs/s${s.hosts > 1 ? `; ${s.hosts} processes each` : ''}`),
		'',
		'| scenario | contender | pairs/s | of ceiling | requests/pair | 429s per 1,000 ops | lost | dead-lettered | s (Graph / wall) | CPU ms per 1,000 pairs (all / net) | peak RSS MB |',
		'| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
		...rows,
		'',
		'| target | figure | met |',
		'| --- | --- | --- |',
		...verdicts.map(v => `| ${v.target} | ${v.figure} | ${v.met ? 'yes' : '**no**'} |`),
		'',
		...(ledgerRows.length > 0
			? [
					'The import ledger, off / on (one import each; on: a settlement row per message and one read of each package\'s links per import):',
					'',
					'| scenario | pairs/s | CPU ms per 1,000 pairs (all) | requests/pair |',
					'| --- | ---: | ---: | ---: |',
					...ledgerRows,
					'',
				]
			: []),
		...(metricsRows.length > 0 || coldRows.length > 0
			? [
					'Metrics, off / on (on: OTLP/protobuf to a local sink every second; cold start: medians of seven runs each, interleaved):',
					'',
					'| scenario | pairs/s | CPU ms per 1,000 pairs (all) |',
					'| --- | ---: | ---: |',
					...metricsRows,
					'',
					...(coldRows.length > 0 ? ['| cold start (`run --until-empty` on an empty queue) | wall ms | CPU ms |', '| --- | ---: | ---: |', ...coldRows, ''] : []),
				]
			: []),
		...(reconciles.length > 0
			? [
					'| reconcile (rules / packages) | contender | s | peak RSS MB | missing found |',
					'| --- | --- | ---: | ---: | ---: |',
					...reconciles.map(run => `| ${run.rules.toLocaleString('en-US')} / ${run.packages.toLocaleString('en-US')} | ${run.contender} | ${run.seconds.toFixed(1)} | ${run.peakRssMb.toFixed(0)} | ${run.missing.toLocaleString('en-US')} |`),
					'',
				]
			: []),
		`pairs/s: pairs linked over the time from Graph's first request to its last write. CPU is the whole worker process (the queue host and its storage calls included); net: less an idle process's (start-up, SDK loading).`,
		'',
	].join('\n');
	return {markdown, verdicts};
}

function choosePairs(ids: string[], count: number): Array<{accessPackageId: string; incompatibleAccessPackageId: string}> {
	const pairs: Array<{accessPackageId: string; incompatibleAccessPackageId: string}> = [];
	for (let offset = 1; offset < ids.length && pairs.length < count; offset++) {
		for (let index = 0; index < ids.length && pairs.length < count; index++) {
			pairs.push({accessPackageId: ids[index]!, incompatibleAccessPackageId: ids[(index + offset) % ids.length]!});
		}
	}

	if (pairs.length < count) {
		throw new Error(`${ids.length} packages hold fewer than ${count} pairs`);
	}

	return pairs;
}

async function writePairs(work: string, name: string, pairs: unknown[]): Promise<string> {
	const file = join(work, `${name}.jsonl`);
	await writeFile(file, pairs.map(pair => JSON.stringify(pair)).join('\n'));
	return file;
}

async function enqueuePairs(
	queue: ReturnType<QueueServiceClient['getQueueClient']>,
	pairs: Array<{accessPackageId: string; incompatibleAccessPackageId: string}>,
	correlationId: string,
): Promise<void> {
	await queue.createIfNotExists();
	const packer = new MessagePacker({action: 'add', correlationId, attempt: 0}, 'base64');
	const texts: string[] = [];
	for (const pair of pairs) {
		const full = packer.add(pair);
		if (full) {
			texts.push(full);
		}
	}

	const last = packer.flush();
	if (last) {
		texts.push(last);
	}

	await Promise.all(texts.map(async text => queue.sendMessage(encodeMessage(text, 'base64'))));
}

/** Graph's answers over the run, one line per `timelineBinMs`: seconds since the first request, 2xx, 429, other. */
function timelineText(stats: SimulatorStats): string {
	const lines = stats.timeline.map(([accepted, throttled, other], bin) => `${((bin * timelineBinMs) / 1000).toFixed(2)}\t${accepted}\t${throttled}\t${other}`);
	return `seconds\t2xx\t429\tother\n${lines.join('\n')}\n`;
}

/** With --logs DIR, every measured process's output is kept there (one file per process), and each run's timeline. */
let logDirectory: string | undefined;

async function measureProcess(args: string[], environment: Record<string, string>, work: string, alsoAccepted: readonly number[] = []): Promise<{usage: Usage; output: string}> {
	const usageFile = join(work, `usage-${process.hrtime.bigint()}.json`);
	const child = spawn(process.execPath, ['--import', usageReporter, ...args], {
		env: {PATH: process.env.PATH, ...environment, SOD_BENCH_USAGE_FILE: usageFile},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	let output = '';
	child.stdout.on('data', chunk => {
		output += String(chunk);
	});
	child.stderr.on('data', chunk => {
		output += String(chunk);
	});
	const code = await new Promise<number | null>(resolve => child.once('exit', resolve));
	if (logDirectory) {
		await writeFile(join(logDirectory, `${environment.SOD_QUEUE ?? 'process'}-${child.pid}.log`), output);
	}

	if (code !== 0 && !alsoAccepted.includes(code ?? -1)) {
		throw new Error(`${args.join(' ')} exited ${code}:\n${output.slice(-2000)}`);
	}

	return {usage: JSON.parse(await readFile(usageFile, 'utf8')) as Usage, output};
}

async function startSimulatorProcess(flags: string[]) {
	const child = spawn(process.execPath, [cli, 'simulate-graph', '--port', '0', '--no-auth', '--seed', '7', ...flags], {stdio: ['ignore', 'pipe', 'inherit']});
	let output = '';
	await new Promise<void>((resolve, reject) => {
		child.stdout.on('data', chunk => {
			output += String(chunk);
			if (output.includes('serving;')) {
				resolve();
			}
		});
		child.once('exit', code => reject(new Error(`the simulator exited (${code}):\n${output}`)));
	});
	const baseUrl = /GRAPH_BASE_URL=(\S+)/.exec(output)![1]!;
	const ids = [...output.matchAll(/^ {2}([\da-f-]{36})$/gm)].map(match => match[1]!);
	// During a simulated outage the simulator refuses connections: wait for it to come back (at most 2 minutes).
	const get = async <T>(path: string): Promise<T> => {
		const until = Date.now() + 120_000;
		for (;;) {
			try {
				// eslint-disable-next-line no-await-in-loop
				return (await (await fetch(`${baseUrl}/_simulator${path}`)).json()) as T;
			} catch (error) {
				if (Date.now() > until) {
					throw error;
				}

				// eslint-disable-next-line no-await-in-loop
				await new Promise(resolve => setTimeout(resolve, 500));
			}
		}
	};
	return {
		baseUrl,
		ids,
		stats: async () => get<SimulatorStats>('/stats'),
		links: async () => (await get<{value: string[]}>('/links')).value,
		async stop() {
			const exited = new Promise(resolve => child.once('exit', resolve));
			child.kill('SIGTERM');
			await exited;
		},
	};
}

function machine(): string {
	const cores = cpus();
	return `${cores.length} x ${cores[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${release()}, Node.js ${process.version}`;
}

await main();
