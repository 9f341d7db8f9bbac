// Existing violators: users who already hold both sides of a rule (a new incompatibility does not remove access).
// A package rule: Graph answers, per direction, the assignments to one package whose user also holds the other; both
// directions are read and joined by user, so each violator comes with both assignments. A group rule: Graph has no
// such query, so the package's delivered assignments are joined with the group's transitive user members (nested
// groups walked by Graph), page by page: memory holds the package's holders and one page of members.

import type {LinkEngine} from '../engine/link-engine.js';
import type {GraphFailure} from '../graph/graph-failure.js';
import {pairKey, type GroupPair, type PackagePair, type Pair} from '../pair/pair.js';
import {forEachBounded} from './for-each-bounded.js';
import type {ManifestRule} from './manifest.js';

export interface Violation {
	rule: Pair;
	user: {objectId: string; displayName: string | null; principalName: string | null};
	/** The user's assignment to `rule.accessPackageId`. */
	assignmentId: string | null;
	/** The user's assignment to `rule.incompatibleAccessPackageId`; null for a group rule (membership has none). */
	incompatibleAssignmentId: string | null;
}

export interface ViolationsReport {
	violations: Violation[];
	readFailures: Array<{rule: Pair; failure: GraphFailure}>;
}

interface Assignment {
	id?: unknown;
	/** v1.0 `state`, beta `assignmentState`: `delivered` / `Delivered` when the user holds the package. */
	state?: unknown;
	assignmentState?: unknown;
	target?: {objectId?: unknown; displayName?: unknown; principalName?: unknown; email?: unknown};
}

/** Reading a group's members needs this permission; a 403 on them says so in the report. */
export const groupMembersPermission = 'GroupMember.Read.All';

/** Rules are checked `readConcurrency / 2` at a time (two reads each), so memory does not grow with the manifest. */
export async function findViolations(engine: LinkEngine, rules: readonly ManifestRule[], deadline: number, readConcurrency: number): Promise<ViolationsReport> {
	const report: ViolationsReport = {violations: [], readFailures: []};
	const unique = new Map(rules.map(rule => [pairKey(rule.pair), rule.pair]));
	await forEachBounded([...unique.values()], Math.max(1, Math.floor(readConcurrency / 2)), async rule => {
		const found = rule.incompatibleGroupId === undefined ? await packageViolations(engine, rule, deadline) : await groupViolations(engine, rule, deadline);
		if ('failure' in found) {
			report.readFailures.push({rule, failure: found.failure});
		} else {
			report.violations.push(...found.violations);
		}
	});
	const key = (violation: Violation) => `${pairKey(violation.rule)}/${violation.user.objectId}`;
	report.violations.sort((a, b) => key(a).localeCompare(key(b)));
	return report;
}

type Found = {violations: Violation[]} | {failure: GraphFailure};

async function packageViolations(engine: LinkEngine, rule: PackagePair, deadline: number): Promise<Found> {
	const [forward, backward] = await Promise.all([
		engine.readAll({kind: 'additional-access', accessPackageId: rule.accessPackageId, incompatibleAccessPackageId: rule.incompatibleAccessPackageId, nextLink: undefined}, {deadline}),
		engine.readAll({kind: 'additional-access', accessPackageId: rule.incompatibleAccessPackageId, incompatibleAccessPackageId: rule.accessPackageId, nextLink: undefined}, {deadline}),
	]);
	if (forward.kind === 'failed') {
		return {failure: forward.failure};
	}

	if (backward.kind === 'failed') {
		return {failure: backward.failure};
	}

	const other = new Map((backward.value as Assignment[]).map(assignment => [String(assignment.target?.objectId), assignment]));
	const violations: Violation[] = [];
	for (const assignment of forward.value as Assignment[]) {
		const user = userOf(assignment);
		if (user) {
			const otherId = other.get(user.objectId)?.id;
			violations.push({rule, user, assignmentId: stringOrNull(assignment.id), incompatibleAssignmentId: stringOrNull(otherId)});
		}
	}

	return {violations};
}

async function groupViolations(engine: LinkEngine, rule: GroupPair, deadline: number): Promise<Found> {
	const assignments = await engine.readAll({kind: 'assignments', accessPackageId: rule.accessPackageId, nextLink: undefined}, {deadline});
	if (assignments.kind === 'failed') {
		return {failure: assignments.failure};
	}

	const holders = new Map<string, {user: Violation['user']; assignmentId: string | null}>();
	for (const assignment of assignments.value as Assignment[]) {
		const user = userOf(assignment);
		const state = assignment.state ?? assignment.assignmentState;
		if (user && typeof state === 'string' && state.toLowerCase() === 'delivered') {
			holders.set(user.objectId.toLowerCase(), {user, assignmentId: stringOrNull(assignment.id)});
		}
	}

	const violations: Violation[] = [];
	if (holders.size === 0) {
		return {violations}; // Nobody holds the package: the group's members need not be read.
	}

	const members = await engine.readAll(
		{kind: 'transitive-users', groupId: rule.incompatibleGroupId, nextLink: undefined},
		{
			deadline,
			onPage(items) {
				for (const item of items as Array<{id?: unknown}>) {
					const id = typeof item?.id === 'string' ? item.id.toLowerCase() : undefined;
					const holder = id === undefined ? undefined : holders.get(id);
					if (holder) {
						violations.push({rule, user: holder.user, assignmentId: holder.assignmentId, incompatibleAssignmentId: null});
						holders.delete(id!); // A member reached twice (two nested paths) is one violator.
					}
				}
			},
		},
	);
	if (members.kind === 'failed') {
		const {failure} = members;
		return {failure: failure.status === 403 ? {...failure, message: `${failure.message} (reading a group's members needs the application permission ${groupMembersPermission}: sod-sync grant <identity> --group-members)`} : failure};
	}

	return {violations};
}

function userOf(assignment: Assignment): Violation['user'] | undefined {
	const target = assignment.target;
	if (typeof target?.objectId !== 'string') {
		return undefined;
	}

	const principalName = typeof target.principalName === 'string' ? target.principalName : typeof target.email === 'string' ? target.email : null;
	return {objectId: target.objectId, displayName: stringOrNull(target.displayName), principalName};
}

function stringOrNull(value: unknown): string | null {
	return typeof value === 'string' ? value : null;
}
