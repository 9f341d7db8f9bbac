// `sod-sync run`: the local queue host. Polls the pairs queue and runs the Function's own handler on each message.

import {setMaxListeners} from 'node:events';
import {QueueHost, type QueueHostCounts} from '../local/queue-host.js';
import type {Environment} from '../config/settings.js';
import type {LinkEngine} from '../engine/link-engine.js';
import {createPairsHandler} from '../worker/pairs-handler.js';
import {createWorkerDependencies, workerLedgerFor} from '../worker/worker-runtime.js';
import {appQueues, openAppStorage} from '../queue/app-storage.js';
import {exitCodes, formatCount, parseCommandLine, ProgressLine, settingFlagsHelp, settingsFrom, UsageError, type CommandIo} from './command-line.js';
import {OutcomeTotals} from './outcome-totals.js';
import {SodMetrics} from '../telemetry/metrics.js';
import {startTelemetry} from '../telemetry/telemetry.js';

export const runHelp = `Usage: sod-sync run [--until-empty] [options]

Runs the syncPairs worker outside the Functions host: polls the pairs queue and hands each message to the same handler
the Function uses, honouring host.json (batchSize, newBatchThreshold, maxDequeueCount and the <queue>-poison queue,
visibilityTimeout, maxPollingInterval, messageEncoding). Works against Azurite or Azure Storage, and the simulator or
Graph. Several run processes on one queue share the work. SIGINT/SIGTERM stop taking messages and finish those in
flight (unfinished pairs are re-queued); a second signal quits at once (leased messages come back after the lease).

Options:
  --until-empty              exit once the queue holds no message (visible or delayed) and nothing is in flight
  --lease-seconds N          how long a running message stays hidden between renewals (default 60)
  --verbose                  print every message's log line on a terminal too
${settingFlagsHelp}

Exit codes: 0 done, 1 error, 2 bad usage.`;

export interface RunResult {
	totals: OutcomeTotals;
	counts: QueueHostCounts;
	engine: LinkEngine;
}

export async function runCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(
		args,
		{'until-empty': {type: 'boolean'}, 'lease-seconds': {type: 'string'}, verbose: {type: 'boolean'}},
		false,
	);
	if (values.help) {
		io.stdout.write(`${runHelp}\n`);
		return exitCodes.ok;
	}

	if (positionals.length > 0) {
		throw new UsageError('run takes no arguments');
	}

	const leaseSeconds = values['lease-seconds'] === undefined ? undefined : Number(values['lease-seconds']);
	if (leaseSeconds !== undefined && (!Number.isInteger(leaseSeconds) || leaseSeconds < 3 || leaseSeconds > 600)) {
		throw new UsageError(`--lease-seconds must be a whole number from 3 to 600, got '${values['lease-seconds']}'`);
	}

	const {counts, totals, engine, elapsedMs} = await runQueueHost(io, values, {untilEmpty: values['until-empty'] ?? false, leaseSeconds, verbose: values.verbose ?? false});
	io.stdout.write(`${describeRun({totals, counts, engine}, elapsedMs)}\n`);
	return exitCodes.ok;
}

export async function runQueueHost(
	io: CommandIo,
	flagValues: Record<string, unknown>,
	options: {untilEmpty: boolean; leaseSeconds?: number; verbose?: boolean; environment?: Environment},
): Promise<RunResult & {elapsedMs: number}> {
	const {settings, environment} = settingsFrom(flagValues, options.environment ?? io.environment);
	// Metrics only where the environment asks for them (OTEL_EXPORTER_OTLP_ENDPOINT): flushed before this returns.
	const telemetry = await startTelemetry(environment);
	const metrics = telemetry ? new SodMetrics() : undefined;
	if (telemetry) {
		io.stderr.write(`sod-sync: metrics to ${telemetry.destination}\n`);
	}

	const storage = openAppStorage(settings);
	const totals = new OutcomeTotals();
	const progress = new ProgressLine(io.stderr);
	const startedAt = Date.now();
	const printLogs = !io.stderr.isTTY || options.verbose;
	const warn = (line: string) => {
		progress.clear();
		io.stderr.write(`${line}\n`);
	};

	const dependencies = createWorkerDependencies(
		settings,
		storage,
		environment,
		{
			signal: io.signal,
			ledger: workerLedgerFor(settings, warn),
			onSummary(summary) {
				metrics?.recordSummary(summary);
				totals.add(summary);
				progress.update(`run: ${totals.brief()}`);
			},
		},
		line => {
			if (printLogs) {
				progress.clear();
				io.stderr.write(`${line}\n`);
			}
		},
	);
	// Every message in flight listens for the shutdown (one listener each: see the handler); the host holds up to
	// batchSize + newBatchThreshold of them, which host.json may set past Node's default warning at 10.
	setMaxListeners(storage.hostConfig.batchSize + storage.hostConfig.newBatchThreshold + 10, io.signal);
	const stopObserving = metrics?.observe(dependencies.engine);
	const stopObservingQueues = metrics?.observeQueues(appQueues(storage, settings));
	const host = new QueueHost({
		queue: storage.queue(settings.queueName),
		poisonQueue: storage.queue(`${settings.queueName}-poison`),
		config: storage.hostConfig,
		handler: createPairsHandler(dependencies),
		leaseSeconds: options.leaseSeconds,
		log(level, message) {
			if (printLogs || level !== 'information') {
				progress.clear();
				io.stderr.write(`${level === 'information' ? '' : `${level}: `}${message}\n`);
			}
		},
	});
	const counts = await host.run({untilEmpty: options.untilEmpty, signal: io.signal});
	// The last export observes the gauges (pace, instances, queue counts) once more, as the run ends.
	await telemetry?.shutdown().catch((error: unknown) => {
		io.stderr.write(`sod-sync: the last metrics could not be exported (${(error as Error).message})\n`);
	});
	stopObserving?.();
	stopObservingQueues?.();
	const unrecorded = (await dependencies.ledger?.flush()) ?? 0;
	if (unrecorded > 0) {
		warn(`sod-sync ledger: ${unrecorded} settled messages could not be recorded before exit; \`sod-sync status\` will show their pairs as pending (they were applied or dead-lettered).`);
	}

	progress.clear();
	return {counts, totals, engine: dependencies.engine, elapsedMs: Date.now() - startedAt};
}

/**
 * What a reader can use of the pace: the rate actually achieved over the run, and the ceiling the throttling showed
 * (this instance's share of it). Never the momentary pace, which climbs past the ceiling while it probes.
 */
function describePace(engine: RunResult['engine'], operations: number, elapsedMs: number): string {
	const achieved = `${formatCount(Math.round(operations / Math.max(0.001, elapsedMs / 1000)))} operations/s achieved over the run`;
	const pace = engine.control.pace;
	if (!pace) {
		return `${achieved}, never paced (Graph did not throttle)`;
	}

	return Number.isFinite(pace.ceiling)
		? `${achieved}; Graph's ceiling as found: ${formatCount(Math.round(pace.ceiling))} operations/s`
		: `${achieved}; throttled once, no ceiling fitted yet (first estimate ${formatCount(Math.round(pace.rate))} operations/s)`;
}

export function describeRun({totals, counts, engine}: RunResult, elapsedMs: number): string {
	const {requests, operations, throttled} = engine.stats;
	const host = [
		`  ${'failed runs'.padEnd(16)}${formatCount(counts.failed).padStart(10)}  (messages handed back to the queue or poisoned)`,
		`  ${'poisoned'.padEnd(16)}${formatCount(counts.poisoned).padStart(10)}`,
		`graph: ${formatCount(requests)} requests carrying ${formatCount(operations)} operations, ${formatCount(throttled)} answered 429 in ${formatCount(engine.control.throttleEvents)} throttle events; ${describePace(engine, operations, elapsedMs)}`,
	];
	return [`sod-sync run: ${(elapsedMs / 1000).toFixed(1)} s`, totals.table(), ...host].join('\n');
}
