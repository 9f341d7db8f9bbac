// The Function registrations load outside the Functions host, without settings: they only register handlers, and
// read settings on the first trigger.

import {spawnSync} from 'node:child_process';
import {readFileSync} from 'node:fs';
import {describe, expect, it} from 'vitest';
import {disabledSettingName, functionNames} from '../src/config/settings.js';

describe('functions/', () => {
	const registrations = {
		'sync-pairs': async () => import('../functions/sync-pairs.js'),
		'reconcile-schedule': async () => import('../functions/reconcile-schedule.js'),
	};

	it.each(Object.keys(registrations))('%s imports without the host and without settings', async name => {
		const saved = process.env.AzureWebJobsStorage;
		delete process.env.AzureWebJobsStorage;
		try {
			await expect(registrations[name as keyof typeof registrations]()).resolves.toBeDefined();
		} finally {
			if (saved !== undefined) {
				process.env.AzureWebJobsStorage = saved;
			}
		}
	});

	it.each(['sync-pairs', 'reconcile-schedule'])('%s refuses to load under the Functions host with a bad setting, naming it', async name => {
		const script = `import(${JSON.stringify(new URL(`../dist/functions/${name}.js`, import.meta.url).href)})`;
		const sample = JSON.parse(readFileSync(new URL('../local.settings.sample.json', import.meta.url), 'utf8')) as {Values: Record<string, string>};
		const load = (environment: Record<string, string>) =>
			spawnSync(process.execPath, ['--input-type=module', '-e', script], {env: {PATH: process.env.PATH, ...environment}, encoding: 'utf8'});
		const good = load(sample.Values);
		expect(good.status, good.stderr).toBe(0);
		const bad = load({...sample.Values, GRAPH_BASE_URL: 'http://graph.example.com', SOD_RECONCILE_APPLY: 'yes'});
		expect(bad.status).not.toBe(0);
		expect(bad.stderr).toMatch(/sod-sync cannot start: invalid app settings:\n- GRAPH_BASE_URL: .* must be https:\/\/[^\n]*\n- SOD_RECONCILE_APPLY: 'yes' must be true or false/);
	});

	it('registers each function under its name in src/config/settings.ts, one that App Service on Linux can disable', () => {
		// Microsoft's worker hands the app '@azure/functions-core' and reads what registerFunction receives; this does the
		// same, so the names below are the ones the host indexes (the conformance check in .ci/run asks the real worker).
		const script = `
			const Module = require('node:module');
			const load = Module._load;
			const registered = [];
			Module._load = function (request, ...rest) {
				if (request === '@azure/functions-core') {
					return {setProgrammingModel() {}, registerHook: () => ({dispose() {}}), log() {}, registerFunction: metadata => registered.push(metadata.name)};
				}
				return load.call(this, request, ...rest);
			};
			(async () => {
				for (const file of ['sync-pairs', 'reconcile-schedule']) await import(${JSON.stringify(new URL('../dist/functions/', import.meta.url).href)} + file + '.js');
				console.log(JSON.stringify(registered));
			})();`;
		const load = spawnSync(process.execPath, ['-e', script], {env: {PATH: process.env.PATH}, encoding: 'utf8'});
		expect(load.status, load.stderr).toBe(0);
		const registered = JSON.parse(load.stdout) as string[];
		expect(registered.sort()).toEqual(Object.values(functionNames).sort());
		for (const name of registered) {
			expect(name).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
			expect(disabledSettingName(name)).toMatch(/^[A-Za-z0-9._]+$/);
		}
	});

	it('is what package.json main names, once built', () => {
		const main = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {main: string}).main;
		expect(main).toBe('dist/functions/*.js');
		for (const name of ['sync-pairs', 'reconcile-schedule']) {
			expect(() => readFileSync(new URL(`../dist/functions/${name}.js`, import.meta.url))).not.toThrow();
		}
	});
});
