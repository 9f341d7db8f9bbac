// The simulator's part of Graph that `sod-sync grant` calls: service principals, Microsoft Graph's own app roles, and
// app role assignments (a managed identity granted an application permission). Routes in, Graph's wire format out.

import {randomUUID} from 'node:crypto';
import {microsoftGraphAppId} from '../deploy/graph-permission-grant.js';

export interface SimulatedServicePrincipal {
	id: string;
	appId: string;
	displayName: string;
	appRoles: Array<{id: string; value: string; allowedMemberTypes: string[]; isEnabled: boolean}>;
}

export interface SimulatedAppRoleAssignment {
	id: string;
	principalId: string;
	resourceId: string;
	appRoleId: string;
}

export interface GrantReply {
	status: number;
	body?: unknown;
}

export class AppRoleGrants {
	readonly graph: SimulatedServicePrincipal;
	readonly #principals = new Map<string, SimulatedServicePrincipal>();
	readonly #assignments: SimulatedAppRoleAssignment[] = [];
	/** When false, granting answers 403 as Graph does to a caller without the permission or the directory role. */
	callerMayGrant = true;
	/** Assignments per page of `appRoleAssignments` and `appRoleAssignedTo`. Defaults to 100, Graph's default. */
	pageSize = 100;

	constructor(newId: () => string = randomUUID) {
		// Role ids are generated, never the real ones: the client must look them up by value.
		const role = (value: string) => ({id: newId(), value, allowedMemberTypes: ['Application'], isEnabled: true});
		this.graph = {
			id: newId(),
			appId: microsoftGraphAppId,
			displayName: 'Microsoft Graph',
			appRoles: [role('EntitlementManagement.Read.All'), role('EntitlementManagement.ReadWrite.All'), role('GroupMember.Read.All'), role('User.Read.All')],
		};
		this.#principals.set(this.graph.id, this.graph);
	}

	/** Adds a service principal (a managed identity's: `appId` is its client id, `id` its object/principal id). */
	addServicePrincipal(displayName: string, ids: {id?: string; appId?: string} = {}): SimulatedServicePrincipal {
		const principal: SimulatedServicePrincipal = {id: ids.id ?? randomUUID(), appId: ids.appId ?? randomUUID(), displayName, appRoles: []};
		this.#principals.set(principal.id, principal);
		return principal;
	}

	assignmentsOf(principalId: string): SimulatedAppRoleAssignment[] {
		return this.#assignments.filter(assignment => assignment.principalId === principalId);
	}

	/**
	 * Adds an assignment as if granted long ago (to fill pages ahead of the one a test cares about). The role need not
	 * be Graph's: any resource id and role id.
	 */
	addAssignment(principalId: string, resourceId: string, appRoleId: string): SimulatedAppRoleAssignment {
		const assignment = {id: randomUUID(), principalId, resourceId, appRoleId};
		this.#assignments.push(assignment);
		return assignment;
	}

	/**
	 * The answer for a `/servicePrincipals...` request, or undefined when the path is not one of these routes.
	 * `search` is the query (`?$skiptoken=...`), `collectionUrl` the request's URL without it, for `@odata.nextLink`.
	 */
	answer(method: string, segments: readonly string[], body: string, search = '', collectionUrl = ''): GrantReply | undefined {
		if (segments[0] === undefined || !segments[0].startsWith('servicePrincipals')) {
			return undefined;
		}

		const byAppId = /^servicePrincipals\(appId='([^']*)'\)$/.exec(decodeURIComponent(segments[0]));
		let principal: SimulatedServicePrincipal | undefined;
		let rest: readonly string[];
		if (byAppId) {
			principal = [...this.#principals.values()].find(item => item.appId === byAppId[1]!.toLowerCase());
			rest = segments.slice(1);
		} else if (segments[0] === 'servicePrincipals' && segments[1] !== undefined) {
			principal = this.#principals.get(segments[1].toLowerCase());
			rest = segments.slice(2);
		} else {
			return undefined;
		}

		if (!principal) {
			return {status: 404, body: {error: {code: 'Request_ResourceNotFound', message: `Resource '${segments.join('/')}' does not exist or one of its queried reference-property objects are not present.`}}};
		}

		if (rest.length === 0 && method === 'GET') {
			return {status: 200, body: principal};
		}

		if (rest.length === 1 && rest[0] === 'appRoleAssignments' && method === 'GET') {
			return this.#page(this.assignmentsOf(principal.id), search, collectionUrl);
		}

		if (rest.length === 1 && rest[0] === 'appRoleAssignedTo' && method === 'GET') {
			return this.#page(this.#assignments.filter(assignment => assignment.resourceId === principal.id), search, collectionUrl);
		}

		if (rest.length === 1 && rest[0] === 'appRoleAssignedTo' && method === 'POST') {
			return this.#grant(principal, body);
		}

		return undefined;
	}

	#grant(resource: SimulatedServicePrincipal, body: string): GrantReply {
		if (!this.callerMayGrant) {
			return {status: 403, body: {error: {code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.'}}};
		}

		let request: {principalId?: unknown; resourceId?: unknown; appRoleId?: unknown};
		try {
			request = JSON.parse(body) as typeof request;
		} catch {
			return {status: 400, body: {error: {code: 'BadRequest', message: 'The request body is not valid JSON.'}}};
		}

		const principal = typeof request.principalId === 'string' ? this.#principals.get(request.principalId.toLowerCase()) : undefined;
		const role = resource.appRoles.find(item => item.id === request.appRoleId);
		if (!principal || request.resourceId !== resource.id || !role) {
			return {status: 400, body: {error: {code: 'Request_BadRequest', message: 'Invalid principalId, resourceId or appRoleId.'}}};
		}

		if (this.#assignments.some(item => item.principalId === principal.id && item.resourceId === resource.id && item.appRoleId === role.id)) {
			// What Graph answers a duplicate grant: a 400, told apart from other 400s only by its words.
			return {status: 400, body: {error: {code: 'Request_BadRequest', message: 'Permission being assigned already exists on the object'}}};
		}

		return {status: 201, body: this.addAssignment(principal.id, resource.id, role.id)};
	}

	#page(items: readonly SimulatedAppRoleAssignment[], search: string, collectionUrl: string): GrantReply {
		const skip = Number(new URLSearchParams(search).get('$skiptoken') ?? 0) || 0;
		const body: Record<string, unknown> = {value: items.slice(skip, skip + this.pageSize)};
		if (skip + this.pageSize < items.length) {
			body['@odata.nextLink'] = `${collectionUrl}?$skiptoken=${skip + this.pageSize}`;
		}

		return {status: 200, body};
	}
}
