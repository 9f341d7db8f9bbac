// Several `sod-sync run` processes on one queue act as one client of Graph: they share the throttle state through a blob
// in Azurite, and waiting (throttling, Graph unreachable) never costs a pair an attempt.

import {describe, expect, it} from 'vitest';
import type {DeadLetterRecord} from '../../src/dead-letter/dead-letter-record.js';
import type {SimulatorOptions} from '../../src/simulator/graph-simulator.js';
import {runInProcess, spawnCli} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {countMessages, drainJson} from '../support/queues.js';

const local = useLocalStack({blob: true});

async function stack(options: SimulatorOptions = {}) {
	return local.startQueues(options);
}

function csv(rows: Array<[string, string]>): string {
	return `accessPackageId,incompatibleAccessPackageId\n${rows.map(([a, b]) => `${a},${b}`).join('\n')}\n`;
}

function allPairs(ids: string[], limit: number): Array<[string, string]> {
	return ids.flatMap(a => ids.filter(b => b !== a).map(b => [a, b] as [string, string])).slice(0, limit);
}

/** Enqueues `rows` as messages of `perMessage` pairs, so that several hosts each get some. */
async function enqueue(environment: Record<string, string>, rows: Array<[string, string]>, perMessage: number): Promise<void> {
	for (let start = 0; start < rows.length; start += perMessage) {
		// eslint-disable-next-line no-await-in-loop
		const result = await runInProcess(['enqueue', '-'], environment, csv(rows.slice(start, start + perMessage)));
		expect(result.code).toBe(0);
	}
}

describe('scale-out: instances share one throttle state', () => {
	it("one host's 429 shuts every host's gate: no request reaches Graph during its Retry-After", async () => {
		const arrivals: number[] = [];
		let posts = 0;
		let throttledAt = 0;
		const retryAfterSeconds = 4;
		const {simulator, ids, environment} = await stack({
			faults: {latencyMs: 20, jitterMs: 5},
			onRequest(method, _path, at) {
				arrivals.push(at);
				if (method === 'POST' && ++posts === 20) {
					// The next write, whichever host sends it, is told to wait; both hosts are working by now.
					throttledAt = at;
					simulator.script({
						method: 'POST',
						reply: {status: 429, headers: {'retry-after': String(retryAfterSeconds)}, body: {error: {code: 'TooManyRequests', message: 'slow down'}}},
					});
				}
			},
		});
		const rows = allPairs(ids, 800);
		await enqueue(environment, rows, 20);
		const settings = {...environment, GRAPH_MAX_CONCURRENCY: '2', GRAPH_BATCH_SIZE: '5'};
		const hosts = [spawnCli(['run', '--until-empty'], settings), spawnCli(['run', '--until-empty'], settings)];
		expect(await Promise.all(hosts.map(async host => host.exited))).toEqual([0, 0]);
		for (const host of hosts) {
			expect(host.output()).toMatch(/messages\s+[1-9]/);
		}

		expect(throttledAt).toBeGreaterThan(0);
		expect(simulator.stats.byStatus[429]).toBeGreaterThan(0);
		// Requests in flight when the 429 came, and the other host's until its next read of the shared state (every
		// second), may still arrive; from then until Retry-After has passed, none.
		const quiet = arrivals.filter(at => at > throttledAt + 2000 && at < throttledAt + retryAfterSeconds * 1000 - 100);
		expect(quiet).toEqual([]);
		expect(arrivals.filter(at => at >= throttledAt + retryAfterSeconds * 1000).length).toBeGreaterThan(0);
		expect(simulator.allLinks()).toEqual(rows.map(([a, b]) => `${a}/${b}`).sort());
	}, 60_000);

	it('with SOD_MAX_ATTEMPTS=1, throttling and Graph refusing connections dead-letter nothing', async () => {
		const {simulator, ids, environment, pairsQueue, deadLetterQueue} = await stack({
			throttle: {operationsPerSecond: 40, burstOperations: 40, retryAfterSeconds: 1},
			faults: {latencyMs: 10, jitterMs: 5},
		});
		const rows = allPairs(ids, 300);
		const settings = {...environment, SOD_MAX_ATTEMPTS: '1', SOD_INVOCATION_BUDGET_SECONDS: '5'};
		await enqueue(settings, rows, 50);
		// Graph refuses connections for the first 2 s, then throttles at 40 operations/s: 300 pairs take several invocations.
		const outage = simulator.outage(2000);
		const hosts = [spawnCli(['run', '--until-empty'], settings), spawnCli(['run', '--until-empty'], settings)];
		expect(await Promise.all(hosts.map(async host => host.exited))).toEqual([0, 0]);
		await outage;
		expect(await drainJson<DeadLetterRecord>(deadLetterQueue)).toEqual([]);
		expect(simulator.allLinks()).toEqual(rows.map(([a, b]) => `${a}/${b}`).sort());
		expect(await countMessages(pairsQueue)).toBe(0);
		expect(hosts.map(host => host.output()).join('\n')).toMatch(/requeued/);
	}, 60_000);

	it('falls back to per-process pacing with one warning when the shared state cannot be reached, and loses nothing', async () => {
		const {simulator, ids, environment, deadLetterQueue} = await stack({throttle: {operationsPerSecond: 200, burstOperations: 100}});
		// A blob endpoint where nothing listens.
		const storage = `${local.azurite.connectionString.replace(/BlobEndpoint=[^;]*;/, '')}BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;`;
		const settings = {...environment, AzureWebJobsStorage: storage};
		const rows = allPairs(ids, 300);
		await enqueue(settings, rows, 50);
		const host = spawnCli(['run', '--until-empty'], settings);
		expect(await host.exited).toBe(0);
		expect(host.output().match(/shared throttle state cannot be reached/g)).toHaveLength(1);
		expect(simulator.allLinks()).toEqual(rows.map(([a, b]) => `${a}/${b}`).sort());
		expect(await drainJson<DeadLetterRecord>(deadLetterQueue)).toEqual([]);
	});
});
