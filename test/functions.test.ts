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

	it('is what package.json main names, once built', () => {
		const main = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {main: string}).main;
		expect(main).toBe('dist/functions/*.js');
		for (const name of ['sync-pairs', 'reconcile-schedule']) {
			expect(() => readFileSync(new URL(`../dist/functions/${name}.js`, import.meta.url))).not.toThrow();
		}
	});
});
