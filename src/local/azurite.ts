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
	pid: number;
	stop(): Promise<void>;
}

/**
 * @example
 * const azurite = await startAzurite();
 * process.env.AzureWebJobsStorage = azurite.connectionString;
 * await azurite.stop();
 */
export async function startAzurite(options: {timeoutMs?: number} = {}): Promise<RunningAzurite> {
	const require = createRequire(import.meta.url);
	const packageRoot = dirname(require.resolve('azurite/package.json'));
	// The queue service's own entry point, started with node directly: no npx wrapper to orphan on kill.
	const entry = join(packageRoot, 'dist', 'src', 'queue', 'main.js');
	const child = spawn(
		process.execPath,
		[entry, '--inMemoryPersistence', '--queueHost', '127.0.0.1', '--queuePort', '0', '--skipApiVersionCheck', '--disableTelemetry', '--silent'],
		{stdio: ['ignore', 'pipe', 'pipe']},
	);
	const port = await new Promise<number>((resolve, reject) => {
		let output = '';
		const timer = setTimeout(() => fail(new Error(`Azurite did not start within ${options.timeoutMs ?? 20_000} ms:\n${output}`)), options.timeoutMs ?? 20_000);
		const fail = (error: Error) => {
			clearTimeout(timer);
			child.kill('SIGKILL');
			reject(error);
		};

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
		child.once('exit', code => fail(new Error(`Azurite exited (${code}) before it listened:\n${output}`)));
		child.once('error', fail);
	});
	child.stdout!.resume();
	child.stderr!.resume();
	return {
		port,
		pid: child.pid!,
		connectionString: azuriteConnectionString(port),
		stop: async () => stopChild(child),
	};
}

export function azuriteConnectionString(port: number): string {
	return `DefaultEndpointsProtocol=http;AccountName=${developmentAccount.name};AccountKey=${developmentAccount.key};QueueEndpoint=http://127.0.0.1:${port}/${developmentAccount.name};`;
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
