// The Function registrations load outside the Functions host, without settings: they only register handlers, and
// read settings on the first trigger.

import {readFileSync} from 'node:fs';
import {describe, expect, it} from 'vitest';

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
		const {spawnSync} = await import('node:child_process');
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

	it('is what package.json main names, once built', () => {
		const main = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {main: string}).main;
		expect(main).toBe('dist/functions/*.js');
		for (const name of ['sync-pairs', 'reconcile-schedule']) {
			expect(() => readFileSync(new URL(`../dist/functions/${name}.js`, import.meta.url))).not.toThrow();
		}
	});
});
