// Starts Azurite's queue service (and its blob and table services) from node_modules, in memory, on free loopback
// ports; for `npm run local` and the tests.

import {spawn, type ChildProcess} from 'node:child_process';
import {createServer, type AddressInfo} from 'node:net';
import {createRequire} from 'node:module';
import {dirname, join} from 'node:path';

/** Azurite's well-known development account (public, documented by Microsoft; not a secret). */
const developmentAccount = {
	name: 'devstoreaccount1',
	key: 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
};

export interface RunningAzurite {
	connectionString: string;
	port: number;
	/** Set when started with `blob: true`. */
	blobPort: number | undefined;
	/** Set when started with `table: true`. */
	tablePort: number | undefined;
	stop(): Promise<void>;
}

/**
 * Starts Azurite's queue service (with `blob` and `table`, those services too) from node_modules, in memory, on free
 * ports.
 *
 * @example
 * const azurite = await startAzurite();
 * process.env.AzureWebJobsStorage = azurite.connectionString;
 * await azurite.stop();
 */
export async function startAzurite(options: {timeoutMs?: number; blob?: boolean; table?: boolean} = {}): Promise<RunningAzurite> {
	const services: Array<'queue' | 'blob' | 'table'> = ['queue', ...(options.blob ? ['blob' as const] : []), ...(options.table ? ['table' as const] : [])];
	const started = await Promise.allSettled(services.map(async service => startService(service, options.timeoutMs)));
	const children = started.flatMap(result => (result.status === 'fulfilled' ? [result.value.child] : []));
	const failed = started.find(result => result.status === 'rejected');
	if (failed) {
		await Promise.all(children.map(stopChild));
		throw (failed as PromiseRejectedResult).reason;
	}

	const port = (service: 'queue' | 'blob' | 'table') => {
		const index = services.indexOf(service);
		return index === -1 ? undefined : (started[index] as PromiseFulfilledResult<{port: number}>).value.port;
	};

	return {
		port: port('queue')!,
		blobPort: port('blob'),
		tablePort: port('table'),
		connectionString: azuriteConnectionString(port('queue')!, port('blob'), port('table')),
		stop: async () => {
			await Promise.all(children.map(stopChild));
		},
	};
}

/**
 * A service's own entry point, started with node directly: no npx wrapper to orphan on kill. The queue and blob
 * services take port 0 and print the port they got; the table service prints only the port it was given, so it is
 * given a port that was free a moment ago, and started again on another should that one be taken meanwhile.
 */
async function startService(service: 'queue' | 'blob' | 'table', timeoutMs = 20_000): Promise<{port: number; child: ChildProcess}> {
	if (service !== 'table') {
		return startServiceOn(service, 0, timeoutMs);
	}

	for (let attempt = 1; ; attempt++) {
		try {
			// eslint-disable-next-line no-await-in-loop
			return await startServiceOn(service, await freePort(), timeoutMs);
		} catch (error) {
			if (attempt === 3) {
				throw error;
			}
		}
	}
}

async function freePort(): Promise<number> {
	const server = createServer();
	await new Promise<void>((resolve, reject) => {
		server.once('error', reject);
		server.listen(0, '127.0.0.1', resolve);
	});
	const {port} = server.address() as AddressInfo;
	await new Promise<void>(resolve => server.close(() => resolve()));
	return port;
}

async function startServiceOn(service: 'queue' | 'blob' | 'table', requestedPort: number, timeoutMs: number): Promise<{port: number; child: ChildProcess}> {
	const require = createRequire(import.meta.url);
	const packageRoot = dirname(require.resolve('azurite/package.json'));
	const entry = join(packageRoot, 'dist', 'src', service, 'main.js');
	const child = spawn(
		process.execPath,
		[entry, '--inMemoryPersistence', `--${service}Host`, '127.0.0.1', `--${service}Port`, String(requestedPort), '--skipApiVersionCheck', '--disableTelemetry', '--silent'],
		{stdio: ['ignore', 'pipe', 'pipe']},
	);
	const port = await new Promise<number>((resolve, reject) => {
		let output = '';
		const fail = (error: Error) => {
			clearTimeout(timer);
			child.kill('SIGKILL');
			reject(error);
		};

		const timer = setTimeout(() => fail(new Error(`Azurite ${service} did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
		const onData = (chunk: Buffer) => {
			output += chunk.toString();
			const match = /(?:listens on http:\/\/|successfully started on )127\.0\.0\.1:(\d+)/.exec(output);
			if (match) {
				clearTimeout(timer);
				child.stdout!.off('data', onData);
				resolve(Number(match[1]));
			}
		};

		child.stdout!.on('data', onData);
		child.stderr!.on('data', (chunk: Buffer) => {
			output += chunk.toString();
		});
		child.once('exit', code => fail(new Error(`Azurite ${service} exited (${code}) before it listened:\n${output}`)));
		child.once('error', fail);
	});
	child.stdout!.resume();
	child.stderr!.resume();
	return {port, child};
}

export function azuriteConnectionString(queuePort: number, blobPort?: number, tablePort?: number): string {
	const account = developmentAccount.name;
	const blob = blobPort === undefined ? '' : `BlobEndpoint=http://127.0.0.1:${blobPort}/${account};`;
	const table = tablePort === undefined ? '' : `TableEndpoint=http://127.0.0.1:${tablePort}/${account};`;
	return `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${developmentAccount.key};QueueEndpoint=http://127.0.0.1:${queuePort}/${account};${blob}${table}`;
}

async function stopChild(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}

	const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
	child.kill('SIGTERM');
	const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
	await exited;
	clearTimeout(timer);
}
