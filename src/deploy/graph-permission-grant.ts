// Granting a managed identity Microsoft Graph's application permission, which the Azure portal cannot do: find the
// identity's service principal, find the app role on Graph's own service principal by its value (role ids are never
// hard-coded), and assign it unless it is assigned already.

import type {Client} from '@microsoft/microsoft-graph-client';
import {classifyAnswer, readSdkError, type GraphFailure} from '../graph/graph-failure.js';
import {normalizeGuid} from '../pair.js';

/** Microsoft Graph's application id, the same in every tenant. */
export const microsoftGraphAppId = '00000003-0000-0000-c000-000000000000';

export const graphPermissions = {
	/** What the worker needs: add and remove incompatible-package links. */
	readWrite: 'EntitlementManagement.ReadWrite.All',
	/** Enough for a reconcile-only deployment (reports drift, changes nothing). */
	readOnly: 'EntitlementManagement.Read.All',
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
 * role by `permission`, and whether it is assigned already.
 */
export async function planGrant(client: Client, identityId: string, permission: GraphPermission): Promise<GrantPlan> {
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
	if (!role || typeof role.id !== 'string') {
		throw new GrantError(`Microsoft Graph offers no app role '${permission}' here`);
	}

	const assignments = await read(client, `/servicePrincipals/${String(identity.id)}/appRoleAssignments`);
	const existing = Array.isArray(assignments.value) ? (assignments.value as Array<{resourceId?: unknown; appRoleId?: unknown}>) : [];
	return {
		identity: {id: String(identity.id), appId: String(identity.appId), displayName: String(identity.displayName ?? '')},
		graph: {id: String(graph.id)},
		role: {id: role.id, value: permission},
		alreadyGranted: existing.some(item => item.resourceId === graph.id && item.appRoleId === role.id),
	};
}

/** Assigns the planned role (`POST /servicePrincipals/{graph}/appRoleAssignedTo`). */
export async function applyGrant(client: Client, plan: GrantPlan): Promise<void> {
	try {
		await client
			.api(`/servicePrincipals/${plan.graph.id}/appRoleAssignedTo`)
			.version('v1.0')
			.post({principalId: plan.identity.id, resourceId: plan.graph.id, appRoleId: plan.role.id});
	} catch (error) {
		throw explain(classifyAnswer(readSdkError(error), Date.now()), 'assigning the app role');
	}
}

async function read(client: Client, path: string): Promise<Record<string, unknown>> {
	try {
		return (await client.api(path).version('v1.0').get()) as Record<string, unknown>;
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
	const what = `${doing}: ${[failure.status, failure.code].filter(Boolean).join(' ')} ${failure.message}`.trim();
	if (failure.kind === 'forbidden' || failure.kind === 'unauthorized') {
		return new GrantError(`Graph refused ${what}; ${callerNeeds}`);
	}

	return new GrantError(`Graph failed ${what}`);
}
