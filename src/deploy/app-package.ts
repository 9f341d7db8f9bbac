// `npm run package`: the folder and zip that Azure Functions runs, and that `azd deploy` uploads: the compiled app
// (dist/functions, dist/src), host.json, a package.json for running only, and the production dependencies only, as
// package-lock.json names them (no tests, no dev tools, no network: the files come from this checkout's node_modules).

import {cp, lstat, mkdir, readdir, readFile, readlink, rm, writeFile} from 'node:fs/promises';
import {join, relative, sep} from 'node:path';
import {fileURLToPath} from 'node:url';
import {zip, ZipEntryNameError, type ZipEntry} from './zip.js';

interface LockFile {
	packages: Record<string, {dev?: boolean; devOptional?: boolean; optional?: boolean; link?: boolean}>;
}

/** What the deployed package.json keeps: what the Functions worker and Node need to load the app, nothing to build it. */
const deployedFields = ['name', 'version', 'description', 'private', 'type', 'main', 'engines', 'dependencies'] as const;

/**
 * The package.json that is deployed: no `scripts` and no `devDependencies`. Should anything build the package again
 * (Oryx runs `npm install` and then `npm run build` when a remote build is on), there is nothing to run and nothing to
 * install but what is already in node_modules: a `build` script there would run `tsc` without a tsconfig and fail.
 */
export function deployedPackageJson(manifest: Record<string, unknown>): Record<string, unknown> {
	return Object.fromEntries(deployedFields.filter(field => manifest[field] !== undefined).map(field => [field, manifest[field]]));
}

/** What the tree holds that the package must not carry, said before anything is written. */
export class PackageTreeError extends Error {
	override name = 'PackageTreeError';
}

/** `node_modules/name`, `node_modules/@scope/name`, nested under another package's `node_modules`: nothing else. */
const packagePathPattern = /^node_modules\/(?:@[\w.-]+\/)?[\w.-]+(?:\/node_modules\/(?:@[\w.-]+\/)?[\w.-]+)*$/;

/**
 * Package paths (`node_modules/...`) that production needs, from the lock file. A path that is not a package folder
 * (`node_modules/../local.settings.json`, a backslash, a `.` or `..` segment) is refused: the lock file decides what is
 * copied, so a hand-edited or hostile one must not reach outside node_modules.
 */
export function productionPackages(lock: LockFile): string[] {
	const paths = Object.entries(lock.packages)
		.filter(([path, entry]) => path.startsWith('node_modules/') && !entry.dev && !entry.devOptional && !entry.link)
		.map(([path]) => path);
	const refused = paths.filter(path => !packagePathPattern.test(path) || path.split('/').some(segment => segment === '.' || segment === '..'));
	if (refused.length > 0) {
		throw new PackageTreeError(`package-lock.json names paths that are not package folders: ${refused.map(path => JSON.stringify(path)).join(', ')}; nothing was packed`);
	}

	return paths.sort();
}

/**
 * Files in a dependency that nothing loads at run time: type declarations and source maps (a third of the files the
 * OpenTelemetry packages ship). Left out of the package: a cold start on Flex downloads and unpacks it whole.
 */
const buildTimeOnly = /\.(?:d\.[cm]?ts|map)$/;

/** Builds `out` (a folder) and `zipPath` from the checkout at `root`; returns what was packed. */
export async function buildAppPackage(root: string, out: string, zipPath: string): Promise<{files: number; bytes: number; packages: number}> {
	await rm(out, {recursive: true, force: true});
	await mkdir(out, {recursive: true});
	for (const part of ['dist/functions', 'dist/src']) {
		await cp(join(root, part), join(out, part), {recursive: true});
	}

	await cp(join(root, 'host.json'), join(out, 'host.json'));
	const manifest = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
	await writeFile(join(out, 'package.json'), `${JSON.stringify(deployedPackageJson(manifest), null, '\t')}\n`);

	const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as LockFile;
	const packages = productionPackages(lock);
	let copied = 0;
	for (const path of packages) {
		const source = join(root, path);
		// eslint-disable-next-line no-await-in-loop
		if (!(await exists(source))) {
			continue; // An optional package for another platform.
		}

		// Nested node_modules are packages of their own in the lock file: each is copied (or not) on its own merit.
		// eslint-disable-next-line no-await-in-loop
		await cp(source, join(out, path), {
			recursive: true,
			filter: file => !relative(source, file).split(sep).includes('node_modules') && !buildTimeOnly.test(file),
		});
		copied++;
	}

	// A link would be dropped from the zip (it is not a file) or ship a path on this machine: refused, naming it.
	const links = await linksUnder(out);
	if (links.length > 0) {
		throw new PackageTreeError(
			`symbolic links in the package, which would ship as links to this machine or not at all: ${links.map(link => `${relative(out, link.path)} -> ${link.target}`).join(', ')}; replace each with the file it points to`,
		);
	}

	const entries: ZipEntry[] = [];
	for (const file of await filesUnder(out)) {
		// eslint-disable-next-line no-await-in-loop
		entries.push({name: relative(out, file).split(sep).join('/'), data: await readFile(file)});
	}

	const archive = zip(entries);
	await writeFile(zipPath, archive);
	return {files: entries.length, bytes: archive.length, packages: copied};
}

async function exists(path: string): Promise<boolean> {
	try {
		await lstat(path);
		return true;
	} catch {
		return false;
	}
}

async function linksUnder(directory: string): Promise<Array<{path: string; target: string}>> {
	const found: Array<{path: string; target: string}> = [];
	for (const entry of await readdir(directory, {withFileTypes: true})) {
		const path = join(directory, entry.name);
		if (entry.isSymbolicLink()) {
			// eslint-disable-next-line no-await-in-loop
			found.push({path, target: await readlink(path)});
		} else if (entry.isDirectory()) {
			// eslint-disable-next-line no-await-in-loop
			found.push(...(await linksUnder(path)));
		}
	}

	return found;
}

async function filesUnder(directory: string): Promise<string[]> {
	const found: string[] = [];
	for (const entry of await readdir(directory, {withFileTypes: true})) {
		const path = join(directory, entry.name);
		if (entry.isDirectory()) {
			// eslint-disable-next-line no-await-in-loop
			found.push(...(await filesUnder(path)));
		} else if (entry.isFile()) {
			found.push(path);
		} else {
			throw new PackageTreeError(`${path} is neither a file nor a folder (a socket, a device, a link): it cannot be packed`);
		}
	}

	return found.sort();
}

// Run as `npm run package`.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	const root = fileURLToPath(new URL('../../../', import.meta.url));
	let built;
	try {
		built = await buildAppPackage(root, join(root, '.package'), join(root, 'sod-sync.zip'));
	} catch (error) {
		if (error instanceof PackageTreeError || error instanceof ZipEntryNameError) {
			process.stderr.write(`npm run package: ${error.message}\n`);
			process.exit(1);
		}

		throw error;
	}

	const {files, bytes, packages} = built;
	process.stdout.write(`sod-sync.zip: ${files.toLocaleString('en-US')} files, ${packages} production packages, ${(bytes / 2 ** 20).toFixed(1)} MiB (also unpacked in .package/ for azd)\n`);
}
