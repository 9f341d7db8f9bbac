// The one place a Graph URL for an incompatibility link is built. Ids must already be canonical GUIDs
// (see `normalizeGuid`): nothing from a message reaches a URL without passing that check.

import {isCanonicalGuid} from '../pair/pair.js';

const accessPackages = '/identityGovernance/entitlementManagement/accessPackages';

function checked(id: string): string {
	if (!isCanonicalGuid(id)) {
		throw new TypeError(`Expected a canonical lower-case GUID, got ${JSON.stringify(id).slice(0, 60)}`);
	}

	return id;
}

/** `GET` lists, `POST .../$ref` adds: `/identityGovernance/entitlementManagement/accessPackages/{A}/incompatibleAccessPackages`. */
export function incompatibleAccessPackagesPath(accessPackageId: string): string {
	return `${accessPackages}/${checked(accessPackageId)}/incompatibleAccessPackages`;
}

/** `POST` target for adding a link. */
export function addLinkPath(accessPackageId: string): string {
	return `${incompatibleAccessPackagesPath(accessPackageId)}/$ref`;
}

/** `DELETE` target for removing a link. */
export function removeLinkPath(accessPackageId: string, incompatibleAccessPackageId: string): string {
	return `${incompatibleAccessPackagesPath(accessPackageId)}/${checked(incompatibleAccessPackageId)}/$ref`;
}

export function accessPackagePath(accessPackageId: string): string {
	return `${accessPackages}/${checked(accessPackageId)}`;
}

/** The body's `@odata.id`: the absolute URL of package B on the configured Graph origin and version. */
export function accessPackageODataId(graphBaseUrl: URL, apiVersion: string, accessPackageId: string): string {
	return `${graphBaseUrl.origin}/${apiVersion}${accessPackagePath(accessPackageId)}`;
}

/** `GET` lists, `POST .../$ref` adds: the groups incompatible with package `accessPackageId`. */
export function incompatibleGroupsPath(accessPackageId: string): string {
	return `${accessPackages}/${checked(accessPackageId)}/incompatibleGroups`;
}

/** `POST` target for marking a group incompatible with a package. */
export function addGroupLinkPath(accessPackageId: string): string {
	return `${incompatibleGroupsPath(accessPackageId)}/$ref`;
}

/** `DELETE` target for removing a package's incompatible group. */
export function removeGroupLinkPath(accessPackageId: string, groupId: string): string {
	return `${incompatibleGroupsPath(accessPackageId)}/${checked(groupId)}/$ref`;
}

/** The body's `@odata.id` for a group: its absolute URL on the configured Graph origin and version. */
export function groupODataId(graphBaseUrl: URL, apiVersion: string, groupId: string): string {
	return `${graphBaseUrl.origin}/${apiVersion}/groups/${checked(groupId)}`;
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
