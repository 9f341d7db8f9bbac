// The one place a Graph URL for an incompatibility link is built. Ids must already be canonical GUIDs
// (see `normalizeGuid`): nothing from a message reaches a URL without passing that check.

import {isCanonicalGuid, pairKind, pairTarget, type Pair, type PairKind} from '../pair/pair.js';

const accessPackages = '/identityGovernance/entitlementManagement/accessPackages';

function checked(id: string): string {
	if (!isCanonicalGuid(id)) {
		throw new TypeError(`Expected a canonical lower-case GUID, got ${JSON.stringify(id).slice(0, 60)}`);
	}

	return id;
}

/** Where a package keeps each kind of link: its incompatible packages, or its incompatible groups. */
const linkLists: Readonly<Record<PairKind, string>> = {package: 'incompatibleAccessPackages', group: 'incompatibleGroups'};

/** `GET` lists, `POST .../$ref` adds: `.../accessPackages/{A}/incompatibleAccessPackages` (or `incompatibleGroups`). */
export function linkListPath(accessPackageId: string, kind: PairKind): string {
	return `${accessPackages}/${checked(accessPackageId)}/${linkLists[kind]}`;
}

/** `POST` target for adding a pair's link. */
export function addLinkPath(pair: Pair): string {
	return `${linkListPath(pair.accessPackageId, pairKind(pair))}/$ref`;
}

/** `DELETE` target for removing a pair's link. */
export function removeLinkPath(pair: Pair): string {
	return `${linkListPath(pair.accessPackageId, pairKind(pair))}/${checked(pairTarget(pair))}/$ref`;
}

export function accessPackagePath(accessPackageId: string): string {
	return `${accessPackages}/${checked(accessPackageId)}`;
}

/** The add's body `@odata.id`: the absolute URL of the pair's package or group on the configured Graph origin and version. */
export function targetODataId(graphBaseUrl: URL, apiVersion: string, pair: Pair): string {
	const path = pair.incompatibleGroupId === undefined ? accessPackagePath(pair.incompatibleAccessPackageId) : `/groups/${checked(pair.incompatibleGroupId)}`;
	return `${graphBaseUrl.origin}/${apiVersion}${path}`;
}

/** The users in a group, directly or through nested groups (paged; reading them needs `GroupMember.Read.All`). */
export function transitiveUsersPath(groupId: string): string {
	return `/groups/${checked(groupId)}/transitiveMembers/microsoft.graph.user?$select=id`;
}

/**
 * The assignments of `accessPackageId` (paged), with the user expanded: who holds the package. Every state is listed
 * (Graph documents the filter on the package only); the caller keeps the delivered ones. `assignments` in v1.0,
 * `accessPackageAssignments` in beta.
 */
export function packageAssignmentsPath(apiVersion: string, accessPackageId: string): string {
	const assignments = apiVersion === 'beta' ? 'accessPackageAssignments' : 'assignments';
	return `/identityGovernance/entitlementManagement/${assignments}?$filter=${encodeURIComponent(`accessPackage/id eq '${checked(accessPackageId)}'`)}&$expand=target`;
}

/** Every access package in the tenant (paged): ids, names and the catalog each is in (`export --scope catalog:<id>`). */
export function accessPackagesListPath(): string {
	return `${accessPackages}?$select=id,displayName&$expand=catalog($select=id)`;
}

/**
 * Assignments to `accessPackageId` whose user also holds `incompatibleAccessPackageId` (paged), with the user expanded:
 * the existing violators of a rule. The collection is `assignments` in v1.0 and `accessPackageAssignments` in beta.
 */
export function additionalAccessPath(apiVersion: string, accessPackageId: string, incompatibleAccessPackageId: string): string {
	const assignments = apiVersion === 'beta' ? 'accessPackageAssignments' : 'assignments';
	return `/identityGovernance/entitlementManagement/${assignments}/additionalAccess(accessPackageId='${checked(accessPackageId)}',incompatibleAccessPackageId='${checked(incompatibleAccessPackageId)}')?$expand=target`;
}
