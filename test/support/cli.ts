// Runs the sod-sync CLI: in this process through `main` (fast), or as a child process of the built CLI (for kill -9,
// signals and several hosts at once). Every child is killed by `killChildren` if a test leaves it running.

import {spawn, type ChildProcess} from 'node:child_process';
import {existsSync} from 'node:fs';
import {PassThrough, Readable} from 'node:stream';
import {fileURLToPath} from 'node:url';
import {main} from '../../src/cli/main.js';
import type {Environment} from '../../src/config/settings.js';

const cliPath = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface CliResult {
	code: number;
	stdout: string;
	stderr: string;
}

export async function runInProcess(args: string[], environment: Environment, stdin = ''): Promise<CliResult> {
	const stdout = new PassThrough();
	const stderr = new PassThrough();
	const out: string[] = [];
	const err: string[] = [];
	stdout.on('data', chunk => out.push(String(chunk)));
	stderr.on('data', chunk => err.push(String(chunk)));
	const code = await main(args, {stdout, stderr, stdin: Readable.from([stdin]), environment, signal: new AbortController().signal});
	return {code, stdout: out.join(''), stderr: err.join('')};
}

export interface CliChild {
	child: ChildProcess;
	output(): string;
	exited: Promise<number | null>;
}

const children = new Set<ChildProcess>();

/** Starts the built CLI (`npm test` builds first). */
export function spawnCli(args: string[], environment: Environment): CliChild {
	if (!existsSync(cliPath)) {
		throw new Error(`${cliPath} is missing: run npm run build (npm test does)`);
	}

	const child = spawn(process.execPath, [cliPath, ...args], {env: {PATH: process.env.PATH, ...environment}, stdio: ['ignore', 'pipe', 'pipe']});
	children.add(child);
	let output = '';
	child.stdout!.on('data', chunk => {
		output += String(chunk);
	});
	child.stderr!.on('data', chunk => {
		output += String(chunk);
	});
	const exited = new Promise<number | null>(resolve => {
		child.once('exit', code => {
			children.delete(child);
			resolve(code);
		});
	});
	return {child, output: () => output, exited};
}

/** A child's exit code and what it wrote, stdout and stderr interleaved as a terminal shows them. */
export interface ChildResult {
	code: number;
	output: string;
}

export async function runCli(args: string[], environment: Environment, timeoutMs = 60_000): Promise<ChildResult> {
	const running = spawnCli(args, environment);
	const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs);
	const code = await running.exited;
	clearTimeout(timer);
	return {code: code ?? -1, output: running.output()};
}

export function killChildren(): void {
	for (const child of children) {
		child.kill('SIGKILL');
	}
}

/** Waits for `condition`, polling every 50 ms, failing after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!(await condition())) {
		if (Date.now() > deadline) {
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		}

		// eslint-disable-next-line no-await-in-loop
		await new Promise(resolve => setTimeout(resolve, 50));
	}
}
