// Existing violators: users who already hold both packages of a rule (a new incompatibility does not remove access).
// Graph answers, per direction, the assignments to one package whose user also holds the other; both directions are
// read and joined by user, so each violator comes with both assignments.

import type {LinkEngine} from '../engine/link-engine.js';
import type {GraphFailure} from '../graph/graph-failure.js';
import type {Pair} from '../pair/pair.js';
import {forEachBounded} from './for-each-bounded.js';
import type {ManifestRule} from './manifest.js';

export interface Violation {
	rule: Pair;
	user: {objectId: string; displayName: string | null; principalName: string | null};
	/** The user's assignment to `rule.accessPackageId`, and to `rule.incompatibleAccessPackageId`. */
	assignmentId: string | null;
	incompatibleAssignmentId: string | null;
}

export interface ViolationsReport {
	violations: Violation[];
	readFailures: Array<{rule: Pair; failure: GraphFailure}>;
}

interface Assignment {
	id?: unknown;
	target?: {objectId?: unknown; displayName?: unknown; principalName?: unknown; email?: unknown};
}

/** Rules are checked `readConcurrency / 2` at a time (two reads each), so memory does not grow with the manifest. */
export async function findViolations(engine: LinkEngine, rules: readonly ManifestRule[], deadline: number, readConcurrency: number): Promise<ViolationsReport> {
	const report: ViolationsReport = {violations: [], readFailures: []};
	const unique = new Map(rules.map(rule => [`${rule.pair.accessPackageId}/${rule.pair.incompatibleAccessPackageId}`, rule.pair]));
	await forEachBounded([...unique.values()], Math.max(1, Math.floor(readConcurrency / 2)), async rule => {
		const [forward, backward] = await Promise.all([
			engine.readAll({kind: 'additional-access', ...rule, nextLink: undefined}, {deadline}),
			engine.readAll(
				{kind: 'additional-access', accessPackageId: rule.incompatibleAccessPackageId, incompatibleAccessPackageId: rule.accessPackageId, nextLink: undefined},
				{deadline},
			),
		]);
		if (forward.kind === 'failed') {
			report.readFailures.push({rule, failure: forward.failure});
			return;
		}

		if (backward.kind === 'failed') {
			report.readFailures.push({rule, failure: backward.failure});
			return;
		}

		const other = new Map((backward.value as Assignment[]).map(assignment => [String(assignment.target?.objectId), assignment]));
		for (const assignment of forward.value as Assignment[]) {
			const objectId = typeof assignment.target?.objectId === 'string' ? assignment.target.objectId : undefined;
			if (objectId === undefined) {
				continue;
			}

			const target = assignment.target!;
			const principalName = typeof target.principalName === 'string' ? target.principalName : typeof target.email === 'string' ? target.email : null;
			report.violations.push({
				rule,
				user: {objectId, displayName: typeof target.displayName === 'string' ? target.displayName : null, principalName},
				assignmentId: typeof assignment.id === 'string' ? assignment.id : null,
				incompatibleAssignmentId: typeof other.get(objectId)?.id === 'string' ? (other.get(objectId)!.id as string) : null,
			});
		}
	});
	const key = (violation: Violation) => `${violation.rule.accessPackageId}/${violation.rule.incompatibleAccessPackageId}/${violation.user.objectId}`;
	report.violations.sort((a, b) => key(a).localeCompare(key(b)));
	return report;
}
