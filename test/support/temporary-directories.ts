// Temporary directories for one test file, each new, all removed when its tests end.

import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {afterAll} from 'vitest';

/**
 * @example
 * const temporaryDirectory = useTemporaryDirectories('sod-manifest-');
 * const path = join(await temporaryDirectory(), 'rules.csv');
 */
export function useTemporaryDirectories(prefix: string): () => Promise<string> {
	const directories: string[] = [];
	afterAll(async () => {
		await Promise.all(directories.map(async directory => rm(directory, {recursive: true, force: true})));
	});
	return async () => {
		const directory = await mkdtemp(join(tmpdir(), prefix));
		directories.push(directory);
		return directory;
	};
}
