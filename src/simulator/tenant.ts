// The simulated tenant: its access packages, their incompatible links and its assignments, and the replies Graph gives
// to the entitlement-management requests sod-sync makes (request in, reply out; no server, no faults, no throttling).

import {isCanonicalGuid} from '../pair/pair.js';
import {graphError, notFound, type Reply} from './graph-reply.js';

export type RouteName =
	| 'GET package'
	| 'GET packages'
	| 'GET links'
	| 'GET linked-from'
	| 'POST link'
	| 'DELETE link'
	| 'GET additional-access'
	| 'GET assignments'
	| 'GET group links'
	| 'POST group link'
	| 'DELETE group link'
	| 'GET transitive members'
	| 'POST $batch';

/** A user, as `/groups/{id}/transitiveMembers/microsoft.graph.user` lists one (the parts sod-sync reads). */
export interface SimulatedUser {
	id: string;
	displayName: string;
	userPrincipalName: string;
}

/** An assignment of an access package to a user, as Graph's accessPackageAssignment (the parts sod-sync reads). */
export interface SimulatedAssignment {
	id: string;
	accessPackageId: string;
	state: 'Delivered';
	target: {objectId: string; displayName: string; principalName: string};
}

/** What the tenant reads from the simulator's settings at each request (they can change mid-run). */
export interface TenantSettings {
	pageSize: number;
	duplicateAddStatus: 204 | 400 | 409;
	/** The first N adds naming a package answer 404 (replication lag). */
	notFoundFirstAdds: number;
	/** Each page's `@odata.nextLink` is the page itself. */
	loopingNextLink: boolean;
	/** For `@odata.nextLink`. */
	baseUrl: string;
}

/** What the tenant tells the simulator's statistics. */
export interface TenantEvents {
	route(name: RouteName): void;
	unmatched(request: string): void;
	/** A link was added or removed. */
	wrote(): void;
}

const entitlementManagement = '/identityGovernance/entitlementManagement';

export class SimulatedTenant {
	readonly #packages = new Map<string, {id: string; displayName: string; catalog?: {id: string}}>();
	readonly #links = new Map<string, Set<string>>();
	readonly #addsSeen = new Map<string, number>();
	readonly #assignments: SimulatedAssignment[] = [];
	readonly #groups = new Map<string, {id: string; displayName: string}>();
	/** A group's direct members: users, and groups (nested; cycles allowed, as Entra allows none but a file might). */
	readonly #members = new Map<string, Set<string>>();
	readonly #users = new Map<string, SimulatedUser>();
	/** Each package's incompatible groups. */
	readonly #groupLinks = new Map<string, Set<string>>();
	readonly #settings: () => TenantSettings;
	readonly #events: TenantEvents;

	constructor(settings: () => TenantSettings, events: TenantEvents) {
		this.#settings = settings;
		this.#events = events;
	}

	get packageIds(): string[] {
		return [...this.#packages.keys()];
	}

	/** A package, in the catalog `catalogId` when given (listed as Graph expands it: `catalog: {id}`). */
	addPackage(id: string, displayName = `Package ${id.slice(0, 8)}`, catalogId?: string): void {
		this.#packages.set(id.toLowerCase(), {id: id.toLowerCase(), displayName, ...(catalogId === undefined ? {} : {catalog: {id: catalogId.toLowerCase()}})});
	}

	/** Adds a link directly (seeding a tenant's existing state). */
	link(accessPackageId: string, incompatibleAccessPackageId: string): void {
		addTo(this.#links, accessPackageId, incompatibleAccessPackageId);
	}

	/** A group (its members added with `addMember`). */
	addGroup(id: string, displayName = `Group ${id.slice(0, 8)}`): void {
		this.#groups.set(id.toLowerCase(), {id: id.toLowerCase(), displayName});
	}

	/** A user that groups can hold (an assignment's target is one too: `assign` adds it). */
	addUser(user: SimulatedUser): void {
		this.#users.set(user.id.toLowerCase(), {...user, id: user.id.toLowerCase()});
	}

	/** Makes `memberId` (a user or a group) a direct member of `groupId`. */
	addMember(groupId: string, memberId: string): void {
		addTo(this.#members, groupId.toLowerCase(), memberId.toLowerCase());
	}

	/** Marks group `groupId` incompatible with package `accessPackageId` directly (seeding a tenant's state). */
	linkGroup(accessPackageId: string, groupId: string): void {
		addTo(this.#groupLinks, accessPackageId, groupId.toLowerCase());
	}

	unlinkGroup(accessPackageId: string, groupId: string): void {
		this.#groupLinks.get(accessPackageId)?.delete(groupId.toLowerCase());
	}

	groupLinksOf(accessPackageId: string): string[] {
		return [...(this.#groupLinks.get(accessPackageId) ?? [])].sort();
	}

	/** Every package-to-group link, as `A/G` strings, sorted. */
	allGroupLinks(): string[] {
		return [...this.#groupLinks.entries()].flatMap(([from, groups]) => [...groups].map(group => `${from}/${group}`)).sort();
	}

	/** The users in `groupId` directly or through nested groups, each once (a membership cycle ends the walk). */
	transitiveUsers(groupId: string): SimulatedUser[] {
		const seen = new Set<string>([groupId.toLowerCase()]);
		const users = new Map<string, SimulatedUser>();
		const queue = [groupId.toLowerCase()];
		while (queue.length > 0) {
			for (const member of this.#members.get(queue.shift()!) ?? []) {
				const user = this.#users.get(member);
				if (user) {
					users.set(member, user);
				} else if (this.#groups.has(member) && !seen.has(member)) {
					seen.add(member);
					queue.push(member);
				}
			}
		}

		return [...users.values()].sort((a, b) => a.id.localeCompare(b.id));
	}

	/** Removes a link directly (a change made outside sod-sync, in the portal say). */
	unlink(accessPackageId: string, incompatibleAccessPackageId: string): void {
		this.#links.get(accessPackageId)?.delete(incompatibleAccessPackageId);
	}

	/** Assigns a package to a user (seeding existing access). */
	assign(assignment: SimulatedAssignment): SimulatedAssignment {
		this.#assignments.push(assignment);
		const {objectId, displayName, principalName} = assignment.target;
		if (!this.#users.has(objectId.toLowerCase())) {
			this.addUser({id: objectId, displayName, userPrincipalName: principalName});
		}

		return assignment;
	}

	linksOf(accessPackageId: string): string[] {
		return [...(this.#links.get(accessPackageId) ?? [])].sort();
	}

	hasLink(accessPackageId: string, incompatibleAccessPackageId: string): boolean {
		return this.#links.get(accessPackageId)?.has(incompatibleAccessPackageId) ?? false;
	}

	/** Every link, as `A/B` strings, sorted. */
	allLinks(): string[] {
		return [...this.#links.entries()].flatMap(([from, targets]) => [...targets].map(to => `${from}/${to}`)).sort();
	}

	/** The reply to one entitlement-management request (path after the version, with its query in `search`). */
	answer(method: string, path: string, search: string, body: string, contentType: string | undefined, version: string): Reply {
		const segments = path.split('/').filter(Boolean);
		const prefix = entitlementManagement.split('/').filter(Boolean);
		const unmatched = () => {
			this.#events.unmatched(`${method} /${version}${path}${search}`);
			return graphError(400, 'BadRequest', `Resource not found for the segment '${segments.at(-1) ?? ''}'.`);
		};

		if (segments[0] === 'groups') {
			return this.#answerGroups(method, segments, `/${version}${path}`, search, unmatched);
		}

		if (prefix.some((segment, index) => segments[index] !== segment)) {
			return unmatched();
		}

		// additionalAccess lives under `assignments` in v1.0 and `accessPackageAssignments` in beta; the other is not a route.
		const assignments = version === 'beta' ? 'accessPackageAssignments' : 'assignments';
		if (segments[2] === assignments && method === 'GET' && segments.length === 3) {
			return this.#listAssignments(`/${version}${path}`, search, version);
		}

		if (segments[2] === assignments && method === 'GET' && segments.length === 4) {
			const match = /^additionalAccess\(accessPackageId='([^']*)',incompatibleAccessPackageId='([^']*)'\)$/.exec(decodeURIComponent(segments[3]!));
			if (!match) {
				return unmatched();
			}

			this.#events.route('GET additional-access');
			const [a, b] = [match[1]!.toLowerCase(), match[2]!.toLowerCase()];
			if (!isCanonicalGuid(a) || !isCanonicalGuid(b)) {
				return graphError(400, 'BadRequest', 'Invalid access package id.');
			}

			const holdersOfB = new Set(this.#assignments.filter(item => item.accessPackageId === b).map(item => item.target.objectId));
			const violators = this.#assignments.filter(item => item.accessPackageId === a && holdersOfB.has(item.target.objectId));
			return this.#page(violators, `/${version}${path}`, search);
		}

		if (segments[2] !== 'accessPackages') {
			return unmatched();
		}

		const [, , , rawId, navigation, rawTarget, ref, ...extra] = segments;
		if (extra.length > 0) {
			return unmatched();
		}

		if (rawId === undefined) {
			if (method !== 'GET') {
				return unmatched();
			}

			this.#events.route('GET packages');
			return this.#page([...this.#packages.values()], `/${version}${path}`, search);
		}

		if (!isCanonicalGuid(rawId.toLowerCase())) {
			return graphError(400, 'BadRequest', `Invalid key '${rawId}' for accessPackage.`);
		}

		const id = rawId.toLowerCase();
		const target = rawTarget?.toLowerCase();
		if (navigation === undefined && method === 'GET') {
			this.#events.route('GET package');
			const accessPackage = this.#packages.get(id);
			return accessPackage ? {status: 200, body: accessPackage} : notFound(id);
		}

		if (navigation === 'accessPackagesIncompatibleWith' && method === 'GET' && target === undefined) {
			this.#events.route('GET linked-from');
			if (!this.#packages.has(id)) {
				return notFound(id);
			}

			const sources = [...this.#links.entries()].filter(([, targets]) => targets.has(id)).map(([from]) => from);
			return this.#page(sources.sort().map(from => this.#packages.get(from) ?? {id: from}), `/${version}${path}`, search);
		}

		if (navigation === 'incompatibleGroups') {
			return this.#answerGroupLinks(method, id, rawTarget, ref, body, contentType, version, `/${version}${path}`, search, unmatched);
		}

		if (navigation !== 'incompatibleAccessPackages') {
			return unmatched();
		}

		if (method === 'GET' && target === undefined) {
			this.#events.route('GET links');
			if (!this.#packages.has(id)) {
				return notFound(id);
			}

			return this.#page(this.linksOf(id).map(to => this.#packages.get(to) ?? {id: to}), `/${version}${path}`, search);
		}

		if (method === 'POST' && target === '$ref' && ref === undefined) {
			this.#events.route('POST link');
			return this.#addLink(id, body, contentType, version);
		}

		if (method === 'DELETE' && target !== undefined && ref === '$ref') {
			this.#events.route('DELETE link');
			if (!isCanonicalGuid(target)) {
				return graphError(400, 'BadRequest', `Invalid key '${rawTarget}' for accessPackage.`);
			}

			if (!this.#packages.has(id) || !this.hasLink(id, target)) {
				return notFound(this.#packages.has(id) ? target : id);
			}

			this.#links.get(id)!.delete(target);
			this.#events.wrote();
			return {status: 204};
		}

		return unmatched();
	}

	/** `/groups/{G}/transitiveMembers/microsoft.graph.user`: the users in G, nested groups walked (paged). */
	#answerGroups(method: string, segments: string[], path: string, search: string, unmatched: () => Reply): Reply {
		const [, rawId, navigation, cast, ...extra] = segments;
		if (method !== 'GET' || navigation !== 'transitiveMembers' || cast !== 'microsoft.graph.user' || extra.length > 0 || rawId === undefined) {
			return unmatched();
		}

		this.#events.route('GET transitive members');
		const id = rawId.toLowerCase();
		if (!isCanonicalGuid(id)) {
			return graphError(400, 'BadRequest', `Invalid object identifier '${rawId}'.`);
		}

		return this.#groups.has(id) ? this.#page(this.transitiveUsers(id), path, search) : notFound(id);
	}

	/**
	 * `.../accessPackages/{A}/incompatibleGroups`: GET lists the groups, POST `$ref` adds one (`@odata.id` of
	 * `<graph>/<version>/groups/{G}`), DELETE `{G}/$ref` removes one. Answered as the package links are: a duplicate
	 * add answers `duplicateAddStatus`, an unknown package or group 404 (what Graph answers is not documented).
	 */
	#answerGroupLinks(
		method: string,
		id: string,
		rawTarget: string | undefined,
		ref: string | undefined,
		body: string,
		contentType: string | undefined,
		version: string,
		path: string,
		search: string,
		unmatched: () => Reply,
	): Reply {
		if (method === 'GET' && rawTarget === undefined) {
			this.#events.route('GET group links');
			return this.#packages.has(id) ? this.#page(this.groupLinksOf(id).map(group => this.#groups.get(group) ?? {id: group}), path, search) : notFound(id);
		}

		if (method === 'POST' && rawTarget === '$ref' && ref === undefined) {
			this.#events.route('POST group link');
			const group = referencedId(body, contentType, `/${version}/groups/`);
			if (typeof group !== 'string') {
				return group;
			}

			if (!this.#packages.has(id)) {
				return notFound(id);
			}

			if (!this.#groups.has(group)) {
				return notFound(group);
			}

			if (this.#groupLinks.get(id)?.has(group)) {
				const status = this.#settings().duplicateAddStatus;
				return status === 204 ? {status: 204} : graphError(status, status === 409 ? 'Conflict' : 'BadRequest', 'The incompatible group already exists.');
			}

			this.linkGroup(id, group);
			this.#events.wrote();
			return {status: 204};
		}

		if (method === 'DELETE' && rawTarget !== undefined && ref === '$ref') {
			this.#events.route('DELETE group link');
			const group = rawTarget.toLowerCase();
			if (!isCanonicalGuid(group)) {
				return graphError(400, 'BadRequest', `Invalid key '${rawTarget}' for group.`);
			}

			if (!this.#packages.has(id) || !this.#groupLinks.get(id)?.has(group)) {
				return notFound(this.#packages.has(id) ? group : id);
			}

			this.unlinkGroup(id, group);
			this.#events.wrote();
			return {status: 204};
		}

		return unmatched();
	}

	/**
	 * The assignments list, filtered to one package the way Graph documents it (`$filter=accessPackage/id eq '<id>'`),
	 * the user expanded with `$expand=target`. Another filter is refused (the simulator models this one). The state is
	 * `state` in v1.0 (`delivered`) and `assignmentState` in beta (`Delivered`).
	 */
	#listAssignments(path: string, search: string, version: string): Reply {
		this.#events.route('GET assignments');
		const filter = new URLSearchParams(search).get('$filter') ?? '';
		const match = /^accessPackage\/id eq '([^']*)'$/.exec(filter.trim());
		if (!match) {
			return graphError(400, 'BadRequest', `The simulator answers $filter=accessPackage/id eq '<id>' only, got ${JSON.stringify(filter).slice(0, 100)}.`);
		}

		const id = match[1]!.toLowerCase();
		const expandTarget = (new URLSearchParams(search).get('$expand') ?? '').split(',').includes('target');
		const items = this.#assignments
			.filter(item => item.accessPackageId === id)
			.map(({id: assignmentId, accessPackageId, target}) => ({
				id: assignmentId,
				accessPackageId,
				...(version === 'beta' ? {assignmentState: 'Delivered'} : {state: 'delivered'}),
				...(expandTarget ? {target} : {}),
			}));
		return this.#page(items, path, search);
	}

	#addLink(id: string, body: string, contentType: string | undefined, version: string): Reply {
		const target = referencedId(body, contentType, `/${version}${entitlementManagement}/accessPackages/`);
		if (typeof target !== 'string') {
			return target;
		}

		const lag = this.#settings().notFoundFirstAdds;
		const seen = this.#addsSeen.get(id) ?? 0;
		this.#addsSeen.set(id, seen + 1);
		if (seen < lag) {
			return notFound(id);
		}

		if (!this.#packages.has(id)) {
			return notFound(id);
		}

		if (!this.#packages.has(target)) {
			return notFound(target);
		}

		if (id === target) {
			return graphError(400, 'BadRequest', 'An access package cannot be incompatible with itself.');
		}

		if (this.hasLink(id, target)) {
			const status = this.#settings().duplicateAddStatus;
			return status === 204
				? {status: 204}
				: graphError(status, status === 409 ? 'Conflict' : 'BadRequest', 'The incompatible access package already exists.');
		}

		this.link(id, target);
		this.#events.wrote();
		return {status: 204};
	}

	#page(items: unknown[], path: string, search: string): Reply {
		const parameters = new URLSearchParams(search);
		const skip = Number(parameters.get('$skiptoken') ?? 0);
		const {pageSize, baseUrl, loopingNextLink} = this.#settings();
		const top = Math.min(Number(parameters.get('$top') ?? pageSize) || pageSize, pageSize);
		// $select keeps the fields named; $expand adds a navigation back (`catalog($select=id)`: the package's catalog).
		const expanded = (parameters.get('$expand') ?? '').split(/,(?![^(]*\))/).map(name => name.replace(/\(.*$/, '').trim()).filter(Boolean);
		const select = parameters.get('$select')?.split(',');
		const page = items.slice(skip, skip + top).map(item => (select ? pick(item as Record<string, unknown>, [...select, ...expanded]) : item));
		const body: Record<string, unknown> = {value: page};
		if (loopingNextLink) {
			body['@odata.nextLink'] = `${baseUrl}${path}${search === '' ? '' : `?${search.replace(/^\?/, '')}`}`;
		} else if (skip + top < items.length) {
			const next = new URLSearchParams(parameters);
			next.set('$skiptoken', String(skip + top));
			body['@odata.nextLink'] = `${baseUrl}${path}?${next.toString()}`;
		}

		return {status: 200, body};
	}
}

function pick(item: Record<string, unknown>, fields: string[]): Record<string, unknown> {
	return Object.fromEntries(fields.filter(field => Object.hasOwn(item, field)).map(field => [field, item[field]]));
}

/** Adds `value` to the set `map` holds for `key`, starting one when there is none. */
function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
	let values = map.get(key);
	if (!values) {
		values = new Set();
		map.set(key, values);
	}

	values.add(value);
}

/**
 * The id a `$ref` body names (`{"@odata.id": "<graph origin><collection><id>"}`), lower case; or the reply to a body that
 * does not: 415 for another content type, 400 for JSON that is not, or an `@odata.id` outside `collection` or not a GUID.
 */
function referencedId(body: string, contentType: string | undefined, collection: string): string | Reply {
	if (!contentType?.toLowerCase().startsWith('application/json')) {
		return graphError(415, 'UnsupportedMediaType', 'Content-Type must be application/json.');
	}

	let odataId: unknown;
	try {
		odataId = (JSON.parse(body) as Record<string, unknown>)['@odata.id'];
	} catch {
		return graphError(400, 'BadRequest', 'The request body is not valid JSON.');
	}

	const match = typeof odataId === 'string' ? /^https?:\/\/[^/]+(\/.*\/)([^/?#]+)$/.exec(odataId) : null;
	const id = match?.[2]?.toLowerCase();
	if (match?.[1] !== collection || !id || !isCanonicalGuid(id)) {
		return graphError(400, 'BadRequest', `Invalid @odata.id: ${JSON.stringify(odataId)?.slice(0, 200)}`);
	}

	return id;
}
