// Starts Azurite's queue service from node_modules, in memory, on a free loopback port; for `npm run local` and the tests.

import {spawn, type ChildProcess} from 'node:child_process';
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
	stop(): Promise<void>;
}

/**
 * Starts Azurite's queue service (and, with `blob`, its blob service) from node_modules, in memory, on free ports.
 *
 * @example
 * const azurite = await startAzurite();
 * process.env.AzureWebJobsStorage = azurite.connectionString;
 * await azurite.stop();
 */
export async function startAzurite(options: {timeoutMs?: number; blob?: boolean} = {}): Promise<RunningAzurite> {
	const queue = await startService('queue', options.timeoutMs);
	let blob: {port: number; child: ChildProcess} | undefined;
	try {
		blob = options.blob ? await startService('blob', options.timeoutMs) : undefined;
	} catch (error) {
		await stopChild(queue.child);
		throw error;
	}

	return {
		port: queue.port,
		blobPort: blob?.port,
		connectionString: azuriteConnectionString(queue.port, blob?.port),
		stop: async () => {
			await Promise.all([stopChild(queue.child), blob ? stopChild(blob.child) : undefined]);
		},
	};
}

/** The queue (and blob) service's own entry point, started with node directly: no npx wrapper to orphan on kill. */
async function startService(service: 'queue' | 'blob', timeoutMs = 20_000): Promise<{port: number; child: ChildProcess}> {
	const require = createRequire(import.meta.url);
	const packageRoot = dirname(require.resolve('azurite/package.json'));
	const entry = join(packageRoot, 'dist', 'src', service, 'main.js');
	const child = spawn(
		process.execPath,
		[entry, '--inMemoryPersistence', `--${service}Host`, '127.0.0.1', `--${service}Port`, '0', '--skipApiVersionCheck', '--disableTelemetry', '--silent'],
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
			const match = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
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

export function azuriteConnectionString(queuePort: number, blobPort?: number): string {
	const account = developmentAccount.name;
	const blob = blobPort === undefined ? '' : `BlobEndpoint=http://127.0.0.1:${blobPort}/${account};`;
	return `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${developmentAccount.key};QueueEndpoint=http://127.0.0.1:${queuePort}/${account};${blob}`;
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
