#!/usr/bin/env node
// The sod-sync command line: one entry point, one sub-command per file.

import {SettingsError} from '../config/settings.js';
import {exitCodes, UsageError, type CommandIo} from './command-line.js';

type Command = (args: string[], io: CommandIo) => Promise<number>;

// Loaded on use: a command pays only for the modules it needs (enqueue does not load Graph, Functions or the simulator).
const commands: Record<string, {load: () => Promise<Command>; summary: string}> = {
	local: {load: async () => (await import('./local-command.js')).localCommand, summary: 'run everything on this machine: Azurite, the Graph simulator, a sample import'},
	enqueue: {load: async () => (await import('./enqueue-command.js')).enqueueCommand, summary: 'validate a CSV or JSON Lines file of pairs and enqueue it'},
	run: {load: async () => (await import('./run-command.js')).runCommand, summary: 'run the worker on the pairs queue (the local queue host)'},
	status: {load: async () => (await import('./ledger-commands.js')).statusCommand, summary: "an import's progress and totals, or the recent imports"},
	changes: {load: async () => (await import('./ledger-commands.js')).changesCommand, summary: 'the links an import added or removed (the audit trail)'},
	undo: {load: async () => (await import('./ledger-commands.js')).undoCommand, summary: 'enqueue the inverse of what an import changed'},
	reconcile: {load: async () => (await import('./reconcile-command.js')).reconcileCommand, summary: 'compare the tenant with a manifest of rules; --apply fixes the drift'},
	export: {load: async () => (await import('./export-command.js')).exportCommand, summary: "write the tenant's rules as a manifest (reconcile and enqueue read it)"},
	violations: {load: async () => (await import('./reconcile-command.js')).violationsCommand, summary: 'list users who already hold both packages of a rule'},
	grant: {load: async () => (await import('./grant-command.js')).grantCommand, summary: "give a managed identity Microsoft Graph's entitlement-management permission"},
	'dead-letters': {load: async () => (await import('./dead-letters-command.js')).deadLettersCommand, summary: 'list dead letters by reason, or redrive them'},
	'simulate-graph': {
		load: async () => (await import('./simulate-graph-command.js')).simulateGraphCommand,
		summary: 'serve the local Graph simulator',
	},
};

export const mainHelp = `Usage: sod-sync <command> [options]

Commands:
${Object.entries(commands)
	.map(([name, {summary}]) => `  ${name.padEnd(16)} ${summary}`)
	.join('\n')}

Every command takes --help. Settings come from the environment (the Function's app settings; see README.md),
and flags override them.

Exit codes: 0 success, 1 error, 2 bad usage or invalid input, 3 drift (reconcile), no such import (status, changes, undo).`;

export async function main(argv: string[], io: CommandIo): Promise<number> {
	const [name, ...args] = argv;
	if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
		io.stdout.write(`${mainHelp}\n`);
		return name === undefined ? exitCodes.invalidInput : exitCodes.ok;
	}

	const command = commands[name];
	if (!command) {
		io.stderr.write(`sod-sync: unknown command '${name}'\n\n${mainHelp}\n`);
		return exitCodes.invalidInput;
	}

	try {
		return await (await command.load())(args, io);
	} catch (error) {
		if (error instanceof UsageError) {
			io.stderr.write(`sod-sync ${name}: ${error.message} (see sod-sync ${name} --help)\n`);
			return exitCodes.invalidInput;
		}

		if (error instanceof SettingsError) {
			io.stderr.write(`sod-sync ${name}: ${error.message}\n`);
			return exitCodes.error;
		}

		io.stderr.write(`sod-sync ${name}: ${(error as Error)?.message ?? String(error)}\n`);
		return exitCodes.error;
	}
}

// Run when executed, not when imported by tests.
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL((await import('node:fs')).realpathSync(process.argv[1])).href) {
	const controller = new AbortController();
	let signals = 0;
	const onSignal = (signal: NodeJS.Signals) => {
		signals++;
		if (signals > 1) {
			process.stderr.write(`sod-sync: ${signal} again, quitting now (leased messages reappear when their lease runs out)\n`);
			process.exit(130);
		}

		process.stderr.write(`sod-sync: ${signal}: finishing what is in flight (send again to quit now)\n`);
		controller.abort();
	};

	process.on('SIGINT', onSignal);
	process.on('SIGTERM', onSignal);
	const code = await main(process.argv.slice(2), {
		stdout: process.stdout,
		stderr: process.stderr,
		stdin: process.stdin,
		environment: process.env,
		signal: controller.signal,
	});
	process.exitCode = code;
	// Azure SDK keep-alive sockets and timers must not hold the process open once the command is done.
	setTimeout(() => process.exit(code), 200).unref();
}
