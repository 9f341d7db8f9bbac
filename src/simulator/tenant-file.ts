// A simulated tenant on disk: the access packages it holds and the links it starts with.
// {"packages": [{"id": "<guid>", "displayName": "..."}], "links": [{"accessPackageId": "...", "incompatibleAccessPackageId": "..."}]}

import {readFile} from 'node:fs/promises';
import {checkPair, normalizeGuid, type Pair} from '../pair.js';

export interface Tenant {
	packages: Array<{id: string; displayName: string}>;
	links: Pair[];
}

export async function readTenantFile(path: string): Promise<Tenant> {
	const json = JSON.parse(await readFile(path, 'utf8')) as {packages?: unknown; links?: unknown};
	if (!Array.isArray(json.packages)) {
		throw new TypeError(`${path}: "packages" must be an array`);
	}

	const packages = json.packages.map((entry: unknown, index) => {
		const {id, displayName} = (typeof entry === 'string' ? {id: entry} : entry) as {id?: unknown; displayName?: unknown};
		const guid = typeof id === 'string' ? normalizeGuid(id) : undefined;
		if (!guid) {
			throw new TypeError(`${path}: packages[${index}].id is not a GUID`);
		}

		return {id: guid, displayName: typeof displayName === 'string' ? displayName : `Package ${guid.slice(0, 8)}`};
	});
	const links = (Array.isArray(json.links) ? json.links : []).map((entry: unknown, index) => {
		const checked = checkPair(entry);
		if (!checked.ok) {
			throw new TypeError(`${path}: links[${index}]: ${checked.reason}`);
		}

		return checked.pair;
	});
	return {packages, links};
}
