// `npm run package`: the zip Azure runs holds the compiled app and the production dependencies only, and, unpacked
// into an empty folder, its Function registrations load.

import {spawnSync} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readFile, rm, symlink, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {afterAll, describe, expect, it} from 'vitest';
import {buildAppPackage} from '../../src/deploy/app-package.js';
import {zip, ZipEntryNameError} from '../../src/deploy/zip.js';
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
		// Nothing only a build reads: no dependency's type declarations or source maps.
		expect(names.filter(name => name.startsWith('node_modules/') && /\.(?:d\.[cm]?ts|map)$/.test(name))).toEqual([]);

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

		// The registrations, and what they load only when asked (the ledger's table client, the metrics SDK and exporters).
		const lazily = ['@azure/data-tables', '@opentelemetry/sdk-metrics', '@opentelemetry/resources', '@opentelemetry/exporter-metrics-otlp-http', '@opentelemetry/exporter-metrics-otlp-proto', '@azure/monitor-opentelemetry-exporter'];
		const script = `for (const name of ['sync-pairs', 'reconcile-schedule']) await import(\`./dist/functions/\${name}.js\`); for (const name of ${JSON.stringify(lazily)}) await import(name); console.log('loaded')`;
		const load = spawnSync(process.execPath, ['--input-type=module', '-e', script], {cwd: unpacked, env: {PATH: process.env.PATH}, encoding: 'utf8'});
		expect(load.stderr).not.toMatch(/Cannot find|ERR_MODULE_NOT_FOUND/);
		expect(load.status, load.stderr).toBe(0);
		expect(load.stdout).toContain('loaded');
	}, 120_000);
});

describe('the deployment package refuses a tree it cannot pack faithfully', () => {
	/** A checkout of the smallest shape buildAppPackage reads, with one production package. */
	async function fakeCheckout(lockPackages: Record<string, object> = {'node_modules/left-pad': {}}) {
		const checkout = await mkdtemp(join(tmpdir(), 'sod-sync-tree-'));
		trees.push(checkout);
		for (const [path, text] of Object.entries({
			'dist/functions/sync-pairs.js': 'export {};\n',
			'dist/src/main.js': 'export {};\n',
			'host.json': '{"version": "2.0"}\n',
			'package.json': '{"name": "x", "type": "module", "main": "dist/functions/*.js", "scripts": {"build": "tsc"}}\n',
			'local.settings.json': '{"Values": {"GRAPH_ACCESS_TOKEN": "secret"}}\n',
			'node_modules/left-pad/package.json': '{"name": "left-pad"}\n',
		})) {
			// eslint-disable-next-line no-await-in-loop
			await mkdir(dirname(join(checkout, path)), {recursive: true});
			// eslint-disable-next-line no-await-in-loop
			await writeFile(join(checkout, path), text);
		}

		await writeFile(join(checkout, 'package-lock.json'), JSON.stringify({packages: {'': {}, ...lockPackages}}));
		return checkout;
	}

	const trees: string[] = [];
	afterAll(async () => {
		await Promise.all(trees.map(async tree => rm(tree, {recursive: true, force: true})));
	});

	it('packs the fake checkout when nothing is wrong (the cases below differ from it in one thing)', async () => {
		const checkout = await fakeCheckout();
		const built = await buildAppPackage(checkout, join(checkout, '.package'), join(checkout, 'app.zip'));
		const names = unzip(await readFile(join(checkout, 'app.zip'))).map(entry => entry.name);
		expect(names).toEqual(['dist/functions/sync-pairs.js', 'dist/src/main.js', 'host.json', 'node_modules/left-pad/package.json', 'package.json']);
		expect(built.packages).toBe(1);
	});

	it('refuses a symbolic link, naming it, instead of leaving it out or shipping a path on this machine', async () => {
		const checkout = await fakeCheckout();
		await rm(join(checkout, 'dist/functions/sync-pairs.js'));
		await symlink(join(checkout, 'dist/src/main.js'), join(checkout, 'dist/functions/sync-pairs.js'));
		await expect(buildAppPackage(checkout, join(checkout, '.package'), join(checkout, 'app.zip'))).rejects.toThrow(
			new RegExp(`symbolic links in the package.*dist/functions/sync-pairs\\.js -> ${checkout.replaceAll('/', '\\/')}/dist/src/main\\.js`),
		);
		expect(existsSync(join(checkout, 'app.zip'))).toBe(false);
	});

	it.each([['node_modules/../local.settings.json'], ['node_modules/left-pad/../../local.settings.json'], ['node_modules/left-pad\\..\\..\\local.settings.json'], ['node_modules/./x']])(
		'refuses a lock-file path that is not a package folder (%s), so local secrets never reach the zip',
		async path => {
			const checkout = await fakeCheckout({'node_modules/left-pad': {}, [path]: {}});
			await expect(buildAppPackage(checkout, join(checkout, '.package'), join(checkout, 'app.zip'))).rejects.toThrow(
				/package-lock\.json names paths that are not package folders: .*; nothing was packed/,
			);
			expect(existsSync(join(checkout, 'app.zip'))).toBe(false);
		},
	);

	it.each([['../evil.js'], ['dist/../../evil.js'], ['/etc/passwd'], ['dist\\functions\\a.js'], ['C:/x.js'], ['dist//a.js'], ['a\nb']])(
		'the zip writer refuses the entry name %j',
		name => {
			expect(() => zip([{name, data: Buffer.from('x')}])).toThrow(ZipEntryNameError);
		},
	);
});
