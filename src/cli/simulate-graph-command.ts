// `sod-sync simulate-graph`: the Graph simulator as a standalone server.

import {defaultPackageCount, GraphSimulator, type RetryAfterFormat, type SimulatorOptions} from '../simulator/graph-simulator.js';
import {readTenantFile} from '../simulator/tenant-file.js';
import {exitCodes, formatCount, UsageError, type CommandIo} from './command-line.js';
import {parseArgs} from 'node:util';

export const simulateGraphHelp = `Usage: sod-sync simulate-graph [options]

Serves the Graph endpoints sod-sync calls on loopback, in Graph's wire format: access packages and their incompatible
links (add, list with @odata.nextLink paging, remove), $batch (at most 20, answered in any order), bearer-token checks
(401 otherwise) and Graph's error body. Prints its base URL and the package ids, then serves until SIGINT/SIGTERM, and
prints what it saw on the way out. Point sod-sync at it with GRAPH_BASE_URL and GRAPH_ACCESS_TOKEN.

The defaults model real Graph as far as it is known: writes throttled at 3,000 per 150 s (a burst of 3,000, refilling
at 20 per second), Retry-After in whole seconds, a Dev Proxy-style penalty window, 40 +/- 20 ms latency, and a
duplicate add answered 400.

Options:
  --port N                   default 0 (any free port); always 127.0.0.1
  --token T                  the bearer token it accepts (default sim-token)
  --no-auth                  accept requests without a token too (the SDK's default middleware sends none to http://)
  --packages N               generate N access packages (default ${defaultPackageCount})
  --tenant FILE              packages and starting links from a JSON file (see samples/tenant.json)
  --seed N                   seeds generated ids, faults and jitter (default 1)
  --page-size N              items per list page (default 100)
  --duplicate-status 204|400|409
                             what adding an existing link answers (default 400; Graph's real answer is undocumented)
  --rate N                   operations per second (default 20; 0 for no rate limit)
  --burst N                  operations that may be spent at once (default 3000)
  --max-concurrent N         requests in flight before 429 (default: no limit)
  --retry-after seconds|decimal|http-date|absent
                             how Retry-After is written (default seconds)
  --retry-after-seconds S    the wait it announces (default 1; decimal: the real wait)
  --no-penalty               a call during the wait does not extend it
  --limit-warnings           send x-ms-throttle-limit-percentage on answers once 80% of the bucket is spent
  --batch-throttled-status 200|424
                             a $batch with throttled items answers this (default 200; Microsoft's pages disagree)
  --server-errors RATE       share of requests answered 500/502/503/504 (default 0)
  --resets RATE              share of writes applied, then answered by a dropped connection (default 0)
  --latency MS               added to every response (default 40)
  --jitter MS                +/- this much (default 20)
  --not-found-first N        the first N adds naming a package answer 404 (replication lag; default 0)
  --outage-seconds S         an outage: refuse connections for S seconds (default 0, none)
  --outage-after-seconds T   ... starting T seconds after the first Graph request (default 0)
  -h, --help`;

export function parseSimulatorFlags(args: string[]): {options: SimulatorOptions; tenant: string | undefined; help: boolean} {
	let parsed;
	try {
		parsed = parseArgs({
			args,
			allowPositionals: false,
			options: {
				port: {type: 'string'},
				token: {type: 'string'},
				'no-auth': {type: 'boolean'},
				packages: {type: 'string'},
				tenant: {type: 'string'},
				seed: {type: 'string'},
				'page-size': {type: 'string'},
				'duplicate-status': {type: 'string'},
				rate: {type: 'string'},
				burst: {type: 'string'},
				'max-concurrent': {type: 'string'},
				'retry-after': {type: 'string'},
				'retry-after-seconds': {type: 'string'},
				'no-penalty': {type: 'boolean'},
				'limit-warnings': {type: 'boolean'},
				'batch-throttled-status': {type: 'string'},
				'server-errors': {type: 'string'},
				resets: {type: 'string'},
				latency: {type: 'string'},
				jitter: {type: 'string'},
				'not-found-first': {type: 'string'},
				'outage-seconds': {type: 'string'},
				'outage-after-seconds': {type: 'string'},
				help: {type: 'boolean', short: 'h'},
			},
		});
	} catch (error) {
		throw new UsageError((error as Error).message);
	}

	const {values} = parsed;
	const number = (flag: keyof typeof values, fallback: number | undefined, maximum = Number.MAX_SAFE_INTEGER): number | undefined => {
		const raw = values[flag];
		if (raw === undefined) {
			return fallback;
		}

		const value = Number(raw);
		if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > maximum) {
			throw new UsageError(`--${flag} must be a number from 0 to ${maximum}, got '${String(raw)}'`);
		}

		return value;
	};

	const duplicateStatus = number('duplicate-status', 400);
	if (duplicateStatus !== 204 && duplicateStatus !== 400 && duplicateStatus !== 409) {
		throw new UsageError(`--duplicate-status must be 204, 400 or 409, got '${values['duplicate-status']}'`);
	}

	const retryAfter = values['retry-after'] ?? 'seconds';
	if (!['seconds', 'decimal', 'http-date', 'absent'].includes(retryAfter)) {
		throw new UsageError(`--retry-after must be seconds, decimal, http-date or absent, got '${retryAfter}'`);
	}

	const batchThrottledStatus = number('batch-throttled-status', 200);
	if (batchThrottledStatus !== 200 && batchThrottledStatus !== 424) {
		throw new UsageError(`--batch-throttled-status must be 200 or 424, got '${values['batch-throttled-status']}'`);
	}

	const rate = number('rate', 20);
	const options: SimulatorOptions = {
		port: number('port', 0, 65_535),
		token: values.token ?? 'sim-token',
		requireToken: !values['no-auth'],
		packageCount: number('packages', defaultPackageCount, 100_000),
		seed: number('seed', 1),
		pageSize: number('page-size', 100, 1000),
		duplicateAddStatus: duplicateStatus,
		throttle: {
			operationsPerSecond: rate === 0 ? undefined : rate,
			burstOperations: number('burst', 3000),
			maxConcurrentRequests: number('max-concurrent', undefined),
			retryAfter: retryAfter as RetryAfterFormat,
			retryAfterSeconds: number('retry-after-seconds', undefined, 3600),
			penaltyWindow: !values['no-penalty'],
			batchStatusWhenThrottled: batchThrottledStatus,
			limitWarnings: values['limit-warnings'] ?? false,
		},
		faults: {
			serverErrorRate: number('server-errors', 0, 1),
			resetAfterWriteRate: number('resets', 0, 1),
			latencyMs: number('latency', 40, 60_000),
			jitterMs: number('jitter', 20, 60_000),
			notFoundFirstAdds: number('not-found-first', 0, 1000),
			outageMs: (number('outage-seconds', 0, 3600) ?? 0) * 1000,
			outageAfterMs: (number('outage-after-seconds', 0, 3600) ?? 0) * 1000,
		},
	};
	return {options, tenant: values.tenant, help: values.help ?? false};
}

/** Starts a simulator from parsed flags, seeding it from the tenant file when one is named. */
export async function startSimulator(options: SimulatorOptions, tenantPath: string | undefined): Promise<GraphSimulator> {
	const tenant = tenantPath === undefined ? undefined : await readTenantFile(tenantPath);
	const simulator = await GraphSimulator.start(tenant ? {...options, packages: []} : options);
	for (const accessPackage of tenant?.packages ?? []) {
		simulator.addPackage(accessPackage.id, accessPackage.displayName, accessPackage.catalogId);
	}

	for (const link of tenant?.links ?? []) {
		// A group rule in `links` is a group link, as in a manifest.
		if (link.incompatibleGroupId === undefined) {
			simulator.link(link.accessPackageId, link.incompatibleAccessPackageId);
		} else {
			simulator.linkGroup(link.accessPackageId, link.incompatibleGroupId);
		}
	}

	for (const assignment of tenant?.assignments ?? []) {
		simulator.assign(assignment.accessPackageId, assignment.target);
	}

	for (const user of tenant?.users ?? []) {
		simulator.addUser(user);
	}

	for (const group of tenant?.groups ?? []) {
		simulator.addGroup(group.id, group.displayName);
		for (const member of group.members) {
			simulator.addMember(group.id, member);
		}
	}

	for (const link of tenant?.groupLinks ?? []) {
		simulator.linkGroup(link.accessPackageId, link.incompatibleGroupId);
	}

	return simulator;
}

export function describeSimulatorStats(simulator: GraphSimulator): string {
	const {stats} = simulator;
	const statuses = Object.entries(stats.byStatus)
		.map(([status, count]) => `${status} ${formatCount(count)}`)
		.join(', ');
	return [
		`graph simulator: ${formatCount(stats.requests)} requests, ${formatCount(stats.operations)} operations (${statuses || 'none'})`,
		`  peak concurrency ${stats.peakConcurrency}, ${formatCount(stats.resets)} dropped connections, ${formatCount(stats.unauthorized)} unauthorized, ${formatCount(stats.unmatched.length)} unmatched routes`,
		`  links held: ${formatCount(simulator.allLinks().length)}${simulator.allGroupLinks().length > 0 ? `, group links held: ${formatCount(simulator.allGroupLinks().length)}` : ''}`,
	].join('\n');
}

export async function simulateGraphCommand(args: string[], io: CommandIo): Promise<number> {
	const {options, tenant, help} = parseSimulatorFlags(args);
	if (help) {
		io.stdout.write(`${simulateGraphHelp}\n`);
		return exitCodes.ok;
	}

	const simulator = await startSimulator(options, tenant);
	io.stdout.write(`GRAPH_BASE_URL=${simulator.baseUrl}\nGRAPH_ACCESS_TOKEN=${simulator.token}\n`);
	io.stdout.write(`access packages (${formatCount(simulator.packageIds.length)}):\n${simulator.packageIds.map(id => `  ${id}`).join('\n')}\n`);
	io.stdout.write('serving; Ctrl-C to stop\n');
	await new Promise<void>(resolve => {
		if (io.signal.aborted) {
			resolve();
		}

		io.signal.addEventListener('abort', () => resolve(), {once: true});
	});
	await simulator.close();
	io.stdout.write(`${describeSimulatorStats(simulator)}\n`);
	return exitCodes.ok;
}
