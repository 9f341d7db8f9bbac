// Granting a managed identity Microsoft Graph's application permission, which the Azure portal cannot do: find the
// identity's service principal, find the app role on Graph's own service principal by its value (role ids are never
// hard-coded), and assign it unless it is assigned already. Every id Graph returns is checked before it enters a URL,
// and every page of the identity's assignments is read.

import type {Client} from '@microsoft/microsoft-graph-client';
import {classifyAnswer, readSdkError, type GraphFailure} from '../graph/graph-failure.js';
import {splitGraphUrl} from '../graph/link-gateway.js';
import {PageWalk} from '../graph/page-walk.js';
import {normalizeGuid} from '../pair/pair.js';
import {printable} from '../text/untrusted-text.js';

/** Microsoft Graph's application id, the same in every tenant. */
export const microsoftGraphAppId = '00000003-0000-0000-c000-000000000000';

export const graphPermissions = {
	/** What the worker needs: add and remove incompatible-package links. */
	readWrite: 'EntitlementManagement.ReadWrite.All',
	/** Enough for a reconcile-only deployment (reports drift, changes nothing). */
	readOnly: 'EntitlementManagement.Read.All',
	/** For `sod-sync violations` of group rules only: reading a group's transitive members. */
	groupMembers: 'GroupMember.Read.All',
} as const;

export type GraphPermission = (typeof graphPermissions)[keyof typeof graphPermissions];

export interface GrantPlan {
	identity: {id: string; appId: string; displayName: string};
	graph: {id: string};
	role: {id: string; value: GraphPermission};
	alreadyGranted: boolean;
}

/** Why a grant cannot go ahead, in words an operator can act on. */
export class GrantError extends Error {
	override name = 'GrantError';
}

/** The caller's own sign-in needs these to grant (see README, Deploy to Azure). */
const callerNeeds =
	'your sign-in needs the delegated permissions AppRoleAssignment.ReadWrite.All and Application.Read.All and a directory role that may grant Microsoft Graph application permissions (Privileged Role Administrator, or Global Administrator)';

/**
 * Reads what the grant would change: the identity (by object id, else by client id), Graph's service principal, the
 * role by `permission`, and whether it is assigned already (on any page of the identity's assignments).
 * `graphBaseUrl` is the origin the client talks to: a next page elsewhere is not followed.
 */
export async function planGrant(client: Client, identityId: string, permission: GraphPermission, graphBaseUrl: URL): Promise<GrantPlan> {
	const id = normalizeGuid(identityId);
	if (id === undefined) {
		throw new GrantError(`'${identityId.slice(0, 80)}' is not a GUID: give the managed identity's principal (object) id or client id`);
	}

	const identity =
		(await readOptional(client, `/servicePrincipals/${id}?$select=id,appId,displayName`)) ??
		(await readOptional(client, `/servicePrincipals(appId='${id}')?$select=id,appId,displayName`));
	if (!identity) {
		throw new GrantError(`no service principal has the object id or client id ${id} in this tenant: check the identity (azd env get-values prints it)`);
	}

	const graph = await readOptional(client, `/servicePrincipals(appId='${microsoftGraphAppId}')?$select=id,appRoles`);
	if (!graph) {
		throw new GrantError('Microsoft Graph has no service principal in this tenant (it always should): check GRAPH_BASE_URL');
	}

	const roles = Array.isArray(graph.appRoles) ? (graph.appRoles as Array<{id?: unknown; value?: unknown}>) : [];
	const role = roles.find(item => item.value === permission);
	if (!role) {
		throw new GrantError(`Microsoft Graph offers no app role '${permission}' here`);
	}

	const plan: GrantPlan = {
		identity: {
			id: graphId(identity.id, "the identity's object id"),
			appId: graphId(identity.appId, "the identity's client id"),
			displayName: typeof identity.displayName === 'string' ? identity.displayName : '',
		},
		graph: {id: graphId(graph.id, "Microsoft Graph's service principal id")},
		role: {id: graphId(role.id, `the id of the app role ${permission}`), value: permission},
		alreadyGranted: false,
	};
	plan.alreadyGranted = await isGranted(client, plan, graphBaseUrl);
	return plan;
}

/**
 * Assigns the planned role (`POST /servicePrincipals/{graph}/appRoleAssignedTo`). Graph answers a duplicate grant with
 * a 400 told apart only by its words: a 400 or 409 is read back, and an assignment that is there is `already-granted`.
 */
export async function applyGrant(client: Client, plan: GrantPlan, graphBaseUrl: URL): Promise<'granted' | 'already-granted'> {
	try {
		await client
			.api(`/servicePrincipals/${plan.graph.id}/appRoleAssignedTo`)
			.version('v1.0')
			.post({principalId: plan.identity.id, resourceId: plan.graph.id, appRoleId: plan.role.id});
		return 'granted';
	} catch (error) {
		const failure = classifyAnswer(readSdkError(error), Date.now());
		if ((failure.kind === 'bad-request' || failure.kind === 'conflict') && (await isGranted(client, plan, graphBaseUrl))) {
			return 'already-granted';
		}

		throw explain(failure, 'assigning the app role');
	}
}

/** Whether any page of the identity's app role assignments holds the planned one. */
async function isGranted(client: Client, plan: GrantPlan, graphBaseUrl: URL): Promise<boolean> {
	const walk = new PageWalk();
	let request = {version: 'v1.0', path: `/servicePrincipals/${plan.identity.id}/appRoleAssignments`};
	for (;;) {
		// eslint-disable-next-line no-await-in-loop
		const page = await read(client, request.path, request.version);
		const items = Array.isArray(page.value) ? (page.value as Array<{resourceId?: unknown; appRoleId?: unknown} | null>) : [];
		if (items.some(item => item?.resourceId === plan.graph.id && item?.appRoleId === plan.role.id)) {
			return true;
		}

		const nextLink = page['@odata.nextLink'];
		if (typeof nextLink !== 'string') {
			return false;
		}

		const stop = walk.follow(nextLink);
		const next = splitGraphUrl(nextLink, graphBaseUrl);
		if (stop || !next) {
			throw new GrantError(`reading the identity's app role assignments: ${stop ? stop.message : 'Graph returned a next page on another origin, or with another URL inside it; not followed'}`);
		}

		request = next;
	}
}

/** An id Graph returned, checked before it goes into a URL or a request body: a GUID, or the grant stops. */
function graphId(value: unknown, what: string): string {
	const id = typeof value === 'string' ? normalizeGuid(value) : undefined;
	if (id === undefined) {
		throw new GrantError(`Graph returned ${what} as '${printable(String(value), 80)}', not a GUID: nothing was granted`);
	}

	return id;
}

async function read(client: Client, path: string, version = 'v1.0'): Promise<Record<string, unknown>> {
	try {
		return (await client.api(path).version(version).get()) as Record<string, unknown>;
	} catch (error) {
		throw explain(classifyAnswer(readSdkError(error), Date.now()), `reading ${path.split('?')[0]}`);
	}
}

async function readOptional(client: Client, path: string): Promise<Record<string, unknown> | undefined> {
	try {
		return (await client.api(path).version('v1.0').get()) as Record<string, unknown>;
	} catch (error) {
		const failure = classifyAnswer(readSdkError(error), Date.now());
		if (failure.kind === 'not-found') {
			return undefined;
		}

		throw explain(failure, `reading ${path.split('?')[0]}`);
	}
}

function explain(failure: GraphFailure, doing: string): GrantError {
	// Graph's code and message are its text: escaped, so a forged line cannot follow them.
	const said = [failure.status, failure.code === undefined ? undefined : printable(failure.code, 100), printable(failure.message, 500)].filter(Boolean).join(' ');
	const what = `${doing}: ${said}`.trim();
	if (failure.kind === 'forbidden' || failure.kind === 'unauthorized') {
		return new GrantError(`Graph refused ${what}; ${callerNeeds}`);
	}

	return new GrantError(`Graph failed ${what}`);
}
