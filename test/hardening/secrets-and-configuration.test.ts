// Trust boundaries: the bearer token appears in no log line, dead letter or re-queued message on any failure path,
// and misconfiguration fails fast with a message naming the setting.

import {afterAll, beforeAll, describe, expect, it} from 'vitest';
import functions from '@azure/functions';
import {createServer} from 'node:http';
import type {AddressInfo} from 'node:net';
import {Buffer} from 'node:buffer';
import {queueHostConfigFrom} from '../../src/config/host-config.js';
import {staticTokenSource, type TokenSource} from '../../src/graph/graph-client.js';
import {startAzurite, type RunningAzurite} from '../../src/local/azurite.js';
import {QueueHost} from '../../src/local/queue-host.js';
import {readSettings} from '../../src/config/settings.js';
import {GraphSimulator} from '../../src/simulator/graph-simulator.js';
import {createPairsHandler, handlePairsMessage} from '../../src/worker/pairs-handler.js';
import {createLinkEngine, createTokenSource, createWorkerDependencies} from '../../src/worker/worker-runtime.js';
import {runCli, runInProcess} from '../support/cli.js';
import {drainQueue, queueService, uniqueQueueName} from '../support/queues.js';
import {openAppStorage} from '../../src/queue/app-storage.js';

const secret = 'eyJ0eXAiOiJKV1Qi.secret-token-value.Zm9vYmFy';

let azurite: RunningAzurite;
let simulator: GraphSimulator;

beforeAll(async () => {
	azurite = await startAzurite();
	simulator = await GraphSimulator.start({packageCount: 6, token: 'the-only-accepted-token'});
});

afterAll(async () => {
	await simulator.close();
	await azurite.stop();
});

async function closedPort(): Promise<number> {
	const server = createServer();
	await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
	const {port} = server.address() as AddressInfo;
	await new Promise(resolve => server.close(resolve));
	return port;
}

describe('the bearer token', () => {
	it('appears in no log line, dead letter or re-queued message, whatever fails', async () => {
		const captured: string[] = [];
		const [a, b, c] = simulator.packageIds as [string, string, string];
		const scenarios: Array<{name: string; baseUrl: string; tokenSource: TokenSource; script?: () => void}> = [
			{name: '401 from Graph', baseUrl: simulator.baseUrl, tokenSource: staticTokenSource(secret)},
			{
				name: '403 from Graph',
				baseUrl: simulator.baseUrl,
				tokenSource: staticTokenSource('the-only-accepted-token'),
				script: () => simulator.script({method: 'POST', times: 5, reply: {status: 403, body: {error: {code: 'Authorization_RequestDenied', message: 'Insufficient privileges'}}}}),
			},
			{name: 'connection refused', baseUrl: `http://127.0.0.1:${await closedPort()}`, tokenSource: staticTokenSource(secret)},
			{
				name: 'a credential that throws, quoting what it was given',
				baseUrl: simulator.baseUrl,
				tokenSource: {
					getToken: async () => {
						throw new Error('AADSTS7000215: Invalid client secret provided.');
					},
				},
			},
		];
		for (const scenario of scenarios) {
			scenario.script?.();
			const settings = readSettings({
				AzureWebJobsStorage: azurite.connectionString,
				SOD_QUEUE: uniqueQueueName('secret'),
				SOD_DEAD_LETTER_QUEUE: uniqueQueueName('secret-dead'),
				GRAPH_BASE_URL: scenario.baseUrl,
				SOD_RETRY_BASE_MS: '10',
			});
			const dependencies = createWorkerDependencies(settings, openAppStorage(settings, queueHostConfigFrom({})), {}, {
				engine: createLinkEngine(settings, scenario.tokenSource),
				invocationBudgetMs: 3000,
				maxAttempts: 1,
				// A refused connection costs a pair no attempt (it waits); a tiny age limit ends the wait at once, as a record.
				maxPairAgeMs: 1,
			});
			const service = queueService(azurite.connectionString);
			const queue = service.getQueueClient(settings.queueName);
			await queue.create();
			await queue.sendMessage(Buffer.from(JSON.stringify({pairs: [{accessPackageId: a, incompatibleAccessPackageId: b}, {accessPackageId: a, incompatibleAccessPackageId: c}]})).toString('base64'));
			const host = new QueueHost({
				queue,
				poisonQueue: service.getQueueClient(`${settings.queueName}-poison`),
				config: queueHostConfigFrom({maxDequeueCount: 2, visibilityTimeout: '00:00:00', maxPollingInterval: '00:00:01'}),
				handler: createPairsHandler(dependencies),
				leaseSeconds: 5,
				log: (level, message) => captured.push(`${scenario.name}: ${level}: ${message}`),
			});
			await host.run({untilEmpty: true});
			const written = [
				...(await drainQueue(service.getQueueClient(settings.deadLetterQueueName))),
				...(await drainQueue(service.getQueueClient(`${settings.queueName}-poison`))),
			];
			captured.push(...written.map(text => `${scenario.name}: record: ${text}`));
		}

		// Each path did leave its trace...
		expect(captured.some(line => /401 from Graph: error: .*Graph refused the credential \(401\)/.test(line))).toBe(true);
		expect(captured.some(line => /403 from Graph: record: .*"reason":"forbidden"/.test(line))).toBe(true);
		expect(captured.some(line => /connection refused: record: .*"reason":"expired".*ECONNREFUSED/.test(line))).toBe(true);
		expect(captured.some(line => /credential that throws.*could not get a Graph token: AADSTS7000215/.test(line))).toBe(true);
		// ...and none of them holds the token.
		expect(captured.filter(line => line.includes(secret) || line.includes('secret-token-value'))).toEqual([]);
		expect(captured.filter(line => /bearer\s+\S/i.test(line))).toEqual([]);
	}, 60_000);

	it('is not logged when Graph refuses the GRAPH_ACCESS_TOKEN it was configured with', async () => {
		const [a, b] = simulator.packageIds as [string, string];
		const environment = {AzureWebJobsStorage: azurite.connectionString, SOD_QUEUE: uniqueQueueName('env-secret'), GRAPH_BASE_URL: simulator.baseUrl, GRAPH_ACCESS_TOKEN: secret};
		const settings = readSettings(environment);
		const logs: string[] = [];
		const context = new functions.InvocationContext({invocationId: 'x', functionName: 'syncPairs', logHandler: (_level, ...args) => logs.push(args.join(' '))});
		const dependencies = createWorkerDependencies(settings, openAppStorage(settings, queueHostConfigFrom({})), environment, {
			engine: createLinkEngine(settings, createTokenSource(environment, settings)),
		});
		await expect(handlePairsMessage({accessPackageId: a, incompatibleAccessPackageId: b}, context, dependencies)).rejects.toThrow(/401/);
		expect(logs).toHaveLength(1);
		expect(logs.join('\n')).not.toContain(secret);
	});
});

describe('misconfiguration fails fast, naming the setting', () => {
	it('a storage connection that does not answer', async () => {
		const port = await closedPort();
		const started = Date.now();
		const result = await runCli(['run', '--until-empty'], {
			AzureWebJobsStorage: `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`,
			GRAPH_BASE_URL: simulator.baseUrl,
		});
		expect(result.code).toBe(1);
		expect(result.output).toMatch(new RegExp(`AzureWebJobsStorage: the queue service at http://127.0.0.1:${port} did not accept us`));
		expect(Date.now() - started).toBeLessThan(20_000);
	});

	it('a storage key that is wrong', async () => {
		const wrongKey = azurite.connectionString.replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.from('wrong').toString('base64')}`);
		const result = await runInProcess(['enqueue', '-', '--queue', uniqueQueueName('wrong-key')], {AzureWebJobsStorage: wrongKey}, `accessPackageId,incompatibleAccessPackageId\n${simulator.packageIds[0]},${simulator.packageIds[1]}\n`);
		expect(result.code).toBe(1);
		expect(result.stderr).toMatch(/AzureWebJobsStorage: the queue service at http:\/\/127\.0\.0\.1:\d+ did not accept us \(403/);
	});

	it.each([
		[{GRAPH_BASE_URL: 'graph.microsoft.com'}, /GRAPH_BASE_URL: 'graph.microsoft.com' is not a URL/],
		[{GRAPH_BASE_URL: 'http://graph.internal.example'}, /GRAPH_BASE_URL: .* must be https:\/\//],
		[{GRAPH_API_VERSION: 'v2.0'}, /GRAPH_API_VERSION: 'v2.0' is not a Graph API version/],
		[{GRAPH_MAX_CONCURRENCY: '0'}, /GRAPH_MAX_CONCURRENCY: '0' must be a whole number from 1 to 256/],
		[{AzureWebJobsStorage: ''}, /AzureWebJobsStorage: missing/],
	])('%j', async (override, message) => {
		const result = await runInProcess(['run', '--until-empty'], {AzureWebJobsStorage: azurite.connectionString, ...override});
		expect(result.code).toBe(1);
		expect(result.stderr).toMatch(message);
	});
});
