// A simulated tenant on disk: the access packages it holds and the links it starts with.
// {"packages": [{"id": "<guid>", "displayName": "...", "catalogId": "<guid>"}], "links": [{"accessPackageId": "...", "incompatibleAccessPackageId": "..."}],
//  "assignments": [{"accessPackageId": "...", "target": {"objectId": "...", "displayName": "...", "principalName": "..."}}],
//  "users": [{"id": "<guid>", "displayName": "...", "userPrincipalName": "..."}],
//  "groups": [{"id": "<guid>", "displayName": "...", "members": ["<user or group id>", ...]}],
//  "groupLinks": [{"accessPackageId": "...", "incompatibleGroupId": "..."}]}

import {readFile} from 'node:fs/promises';
import {checkPair, normalizeGuid, type Pair} from '../pair/pair.js';

export interface Tenant {
	packages: Array<{id: string; displayName: string; catalogId?: string}>;
	links: Pair[];
	/** Existing assignments: who holds which package. */
	assignments: Array<{accessPackageId: string; target: {objectId: string; displayName: string; principalName: string}}>;
	users: Array<{id: string; displayName: string; userPrincipalName: string}>;
	/** Groups and their direct members (users or groups: nested membership is walked transitively). */
	groups: Array<{id: string; displayName: string; members: string[]}>;
	/** Packages' incompatible groups. */
	groupLinks: Array<{accessPackageId: string; incompatibleGroupId: string}>;
}

export async function readTenantFile(path: string): Promise<Tenant> {
	const json = JSON.parse(await readFile(path, 'utf8')) as {packages?: unknown; links?: unknown; assignments?: unknown; users?: unknown; groups?: unknown; groupLinks?: unknown};
	if (!Array.isArray(json.packages)) {
		throw new TypeError(`${path}: "packages" must be an array`);
	}

	const guidAt = (value: unknown, where: string): string => {
		const guid = typeof value === 'string' ? normalizeGuid(value) : undefined;
		if (!guid) {
			throw new TypeError(`${path}: ${where} is not a GUID`);
		}

		return guid;
	};

	const list = (value: unknown) => (Array.isArray(value) ? (value as unknown[]) : []);
	const packages = json.packages.map((entry: unknown, index) => {
		const {id, displayName, catalogId} = (typeof entry === 'string' ? {id: entry} : entry) as {id?: unknown; displayName?: unknown; catalogId?: unknown};
		const guid = guidAt(id, `packages[${index}].id`);
		const catalog = catalogId === undefined ? undefined : guidAt(catalogId, `packages[${index}].catalogId`);
		return {id: guid, displayName: typeof displayName === 'string' ? displayName : `Package ${guid.slice(0, 8)}`, ...(catalog ? {catalogId: catalog} : {})};
	});
	const links = list(json.links).map((entry, index) => {
		const checked = checkPair(entry);
		if (checked.kind === 'invalid') {
			throw new TypeError(`${path}: links[${index}]: ${checked.reason}`);
		}

		return checked.pair;
	});
	const assignments = list(json.assignments).map((entry, index) => {
		const {accessPackageId, target} = (entry ?? {}) as {accessPackageId?: unknown; target?: {objectId?: unknown; displayName?: unknown; principalName?: unknown}};
		const id = typeof accessPackageId === 'string' ? normalizeGuid(accessPackageId) : undefined;
		if (!id || typeof target?.objectId !== 'string') {
			throw new TypeError(`${path}: assignments[${index}] needs an accessPackageId GUID and a target.objectId`);
		}

		return {
			accessPackageId: id,
			target: {
				objectId: target.objectId,
				displayName: typeof target.displayName === 'string' ? target.displayName : target.objectId,
				principalName: typeof target.principalName === 'string' ? target.principalName : '',
			},
		};
	});
	const users = list(json.users).map((entry, index) => {
		const {id, displayName, userPrincipalName} = (entry ?? {}) as {id?: unknown; displayName?: unknown; userPrincipalName?: unknown};
		const guid = guidAt(id, `users[${index}].id`);
		return {id: guid, displayName: typeof displayName === 'string' ? displayName : guid, userPrincipalName: typeof userPrincipalName === 'string' ? userPrincipalName : ''};
	});
	const groups = list(json.groups).map((entry, index) => {
		const {id, displayName, members} = (entry ?? {}) as {id?: unknown; displayName?: unknown; members?: unknown};
		const guid = guidAt(id, `groups[${index}].id`);
		return {
			id: guid,
			displayName: typeof displayName === 'string' ? displayName : `Group ${guid.slice(0, 8)}`,
			members: list(members).map((member, memberIndex) => guidAt(member, `groups[${index}].members[${memberIndex}]`)),
		};
	});
	const groupLinks = list(json.groupLinks).map((entry, index) => {
		const {accessPackageId, incompatibleGroupId} = (entry ?? {}) as {accessPackageId?: unknown; incompatibleGroupId?: unknown};
		return {accessPackageId: guidAt(accessPackageId, `groupLinks[${index}].accessPackageId`), incompatibleGroupId: guidAt(incompatibleGroupId, `groupLinks[${index}].incompatibleGroupId`)};
	});
	return {packages, links, assignments, users, groups, groupLinks};
}
