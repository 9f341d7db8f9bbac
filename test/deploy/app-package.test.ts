// `npm run package`: the zip Azure runs holds the compiled app and the production dependencies only, and, unpacked
// into an empty folder, its Function registrations load.

import {spawnSync} from 'node:child_process';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, describe, expect, it} from 'vitest';
import {buildAppPackage} from '../../src/deploy/app-package.js';
import {unzip} from '../support/unzip.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
let work: string | undefined;
afterAll(async () => {
	if (work) {
		await rm(work, {recursive: true, force: true});
	}
});

describe('the deployment package', () => {
	it('holds dist, host.json, package.json and production dependencies only, and its registrations load unpacked', async () => {
		work = await mkdtemp(join(tmpdir(), 'sod-sync-package-'));
		const zipPath = join(work, 'sod-sync.zip');
		const built = await buildAppPackage(root, join(work, 'folder'), zipPath);
		const entries = unzip(await readFile(zipPath));
		process.stdout.write(`deployment package: ${entries.length} files, ${(built.bytes / 2 ** 20).toFixed(1)} MiB zipped\n`);
		const names = entries.map(entry => entry.name);
		expect(names).toContain('host.json');
		expect(names).toContain('package.json');
		expect(names).toContain('dist/functions/sync-pairs.js');
		expect(names).toContain('node_modules/@azure/functions/package.json');
		expect(names).toContain('node_modules/p-limit/package.json');
		const topLevel = new Set(names.filter(name => name.startsWith('node_modules/')).map(name => name.split('/').slice(1, name.startsWith('node_modules/@') ? 3 : 2).join('/')));
		for (const devOnly of ['vitest', 'typescript', 'azurite', 'fast-check', 'vite', '@types/node']) {
			expect(topLevel.has(devOnly), devOnly).toBe(false);
		}

		expect(names.some(name => name.startsWith('test/') || name.startsWith('dist/bench/') || name.startsWith('src/'))).toBe(false);

		// Nothing that would build it again: Oryx runs `npm run build` when the deployed package.json has a build script.
		const deployed = JSON.parse(entries.find(entry => entry.name === 'package.json')!.data.toString('utf8')) as Record<string, unknown>;
		const source = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
		expect(deployed.scripts).toBeUndefined();
		expect(deployed.devDependencies).toBeUndefined();
		expect(deployed).toMatchObject({main: source.main, type: 'module', dependencies: source.dependencies, engines: source.engines});

		const unpacked = join(work, 'unpacked');
		for (const entry of entries) {
			const path = join(unpacked, entry.name);
			// eslint-disable-next-line no-await-in-loop
			await mkdir(dirname(path), {recursive: true});
			// eslint-disable-next-line no-await-in-loop
			await writeFile(path, entry.data);
		}

		const script = "for (const name of ['sync-pairs', 'reconcile-schedule']) await import(`./dist/functions/${name}.js`); console.log('loaded')";
		const load = spawnSync(process.execPath, ['--input-type=module', '-e', script], {cwd: unpacked, env: {PATH: process.env.PATH}, encoding: 'utf8'});
		expect(load.stderr).not.toMatch(/Cannot find|ERR_MODULE_NOT_FOUND/);
		expect(load.status, load.stderr).toBe(0);
		expect(load.stdout).toContain('loaded');
	}, 120_000);
});
