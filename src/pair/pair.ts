// An incompatibility pair: holders of `accessPackageId` cannot request the incompatible package, or cannot request it
// while they are members of the incompatible group. Graph links are one-way, so a pair is directed. A pair names exactly
// one target: `incompatibleAccessPackageId` (a package rule) or `incompatibleGroupId` (a group rule).

import {printable} from '../text/untrusted-text.js';

/** A package rule: `incompatibleAccessPackageId` joins `accessPackageId`'s `incompatibleAccessPackages`. */
export interface PackagePair {
	/** The access package whose incompatible list receives the link (lower-case GUID). */
	readonly accessPackageId: string;
	/** The access package marked incompatible with it (lower-case GUID). */
	readonly incompatibleAccessPackageId: string;
	readonly incompatibleGroupId?: undefined;
}

/** A group rule: `incompatibleGroupId` joins `accessPackageId`'s `incompatibleGroups`. */
export interface GroupPair {
	readonly accessPackageId: string;
	readonly incompatibleAccessPackageId?: undefined;
	/** The group whose members cannot request the package (lower-case GUID). */
	readonly incompatibleGroupId: string;
}

export type Pair = PackagePair | GroupPair;

/** Why a symmetric group rule is refused: the reverse link would need the group to have an incompatible list. */
export const symmetricGroupRule = 'symmetric applies to package rules only: a group has no incompatible list to link back from';

/** Which list of the package a pair's link is on. */
export type PairKind = 'package' | 'group';
export const pairKinds: readonly PairKind[] = ['package', 'group'];

export function pairKind(pair: Pair): PairKind {
	return pair.incompatibleGroupId === undefined ? 'package' : 'group';
}

/** The incompatible package's or group's id. */
export function pairTarget(pair: Pair): string {
	return pair.incompatibleGroupId ?? pair.incompatibleAccessPackageId;
}

/** A pair of `kind` from its two ids (ids already canonical). */
export function makePair(kind: PairKind, accessPackageId: string, targetId: string): Pair {
	return kind === 'group' ? {accessPackageId, incompatibleGroupId: targetId} : {accessPackageId, incompatibleAccessPackageId: targetId};
}

/** The pair's fields as a message, a file or a record writes them: the two ids under their names. */
export function pairFields(pair: Pair): Record<string, string> {
	return pair.incompatibleGroupId === undefined
		? {accessPackageId: pair.accessPackageId, incompatibleAccessPackageId: pair.incompatibleAccessPackageId}
		: {accessPackageId: pair.accessPackageId, incompatibleGroupId: pair.incompatibleGroupId};
}

export type LinkAction = 'add' | 'remove';
export const linkActions: readonly LinkAction[] = ['add', 'remove'];

const guidPattern = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/;

/**
 * Normalises a GUID to Graph's canonical lower-case form, or returns `undefined` when it is not one.
 * Surrounding ASCII white space and one pair of braces (`{...}`, as PowerShell and the registry print them) are accepted;
 * anything else (Unicode digits, URL escapes, path characters) is not.
 *
 * @example
 * normalizeGuid(' {C0A74B4D-2694-4D5D-A964-1BEE4FF0AAF2} ') //=> 'c0a74b4d-2694-4d5d-a964-1bee4ff0aaf2'
 */
export function normalizeGuid(value: string): string | undefined {
	let text = value.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
	if (text.startsWith('{') && text.endsWith('}')) {
		text = text.slice(1, -1);
	}

	text = text.toLowerCase();
	return guidPattern.test(text) ? text : undefined;
}

/** True for a GUID already in the canonical form `normalizeGuid` returns. */
export function isCanonicalGuid(value: string): boolean {
	return guidPattern.test(value);
}

export type PairCheck = {kind: 'valid'; pair: Pair} | {kind: 'invalid'; reason: string};

/**
 * Checks one raw pair (any value from a message or a file) and returns the normalised pair or the reason in words.
 * Only own properties count, so `__proto__` tricks cannot supply an id. A pair names `accessPackageId` and exactly one
 * of `incompatibleAccessPackageId` and `incompatibleGroupId`.
 */
export function checkPair(raw: unknown): PairCheck {
	if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
		return {kind: 'invalid', reason: `a pair must be an object with accessPackageId and incompatibleAccessPackageId (or incompatibleGroupId), got ${describe(raw)}`};
	}

	const field = (name: string): unknown => {
		const value = Object.hasOwn(raw, name) ? (raw as Record<string, unknown>)[name] : undefined;
		return value === null || value === '' ? undefined : value;
	};

	const packageTarget = field('incompatibleAccessPackageId');
	const groupTarget = field('incompatibleGroupId');
	if (packageTarget !== undefined && groupTarget !== undefined) {
		return {kind: 'invalid', reason: 'a pair names incompatibleAccessPackageId or incompatibleGroupId, not both'};
	}

	const kind: PairKind = groupTarget === undefined ? 'package' : 'group';
	const targetName = kind === 'group' ? 'incompatibleGroupId' : 'incompatibleAccessPackageId';
	const ids: string[] = [];
	for (const [name, value] of [['accessPackageId', field('accessPackageId')], [targetName, groupTarget ?? packageTarget]] as const) {
		if (value === undefined) {
			return {kind: 'invalid', reason: name === 'accessPackageId' ? 'accessPackageId is missing' : 'incompatibleAccessPackageId (or incompatibleGroupId) is missing'};
		}

		if (typeof value !== 'string') {
			return {kind: 'invalid', reason: `${name} must be a string, got ${describe(value)}`};
		}

		const guid = normalizeGuid(value);
		if (guid === undefined) {
			return {kind: 'invalid', reason: `${name} ${quote(value)} is not a GUID`};
		}

		ids.push(guid);
	}

	const [accessPackageId, targetId] = ids as [string, string];
	if (kind === 'package' && accessPackageId === targetId) {
		return {kind: 'invalid', reason: `an access package cannot be incompatible with itself (${accessPackageId})`};
	}

	return {kind: 'valid', pair: makePair(kind, accessPackageId, targetId)};
}

/** One string per pair, distinct across kinds: `A/B` for a package rule, `A/group/G` for a group rule. */
export function pairKey(pair: Pair): string {
	return pair.incompatibleGroupId === undefined ? `${pair.accessPackageId}/${pair.incompatibleAccessPackageId}` : `${pair.accessPackageId}/group/${pair.incompatibleGroupId}`;
}

/** The other direction of a package rule (a group has no incompatible list: a group rule has none). */
export function reversePair(pair: PackagePair): PackagePair {
	return {accessPackageId: pair.incompatibleAccessPackageId, incompatibleAccessPackageId: pair.accessPackageId};
}

/**
 * A pair for a terminal or a log: `A -> B`, or `A -> group G`. The ids are escaped (a pair from Graph's lists or a dead
 * letter is someone else's text until checked).
 */
export function pairText(pair: {accessPackageId: string; incompatibleAccessPackageId?: string; incompatibleGroupId?: string}): string {
	const target = pair.incompatibleGroupId === undefined ? printable(pair.incompatibleAccessPackageId ?? '', 100) : `group ${printable(pair.incompatibleGroupId, 100)}`;
	return `${printable(pair.accessPackageId, 100)} -> ${target}`;
}

function describe(value: unknown): string {
	if (value === null) {
		return 'null';
	}

	if (Array.isArray(value)) {
		return 'an array';
	}

	return typeof value === 'object' ? 'an object' : `${typeof value} ${quote(String(value))}`;
}

/** Quotes a value for an error message, cut short so that a hostile value cannot flood a log or a record. */
export function quote(value: string, maximum = 80): string {
	const shown = value.length > maximum ? `${value.slice(0, maximum)}...` : value;
	return printable(JSON.stringify(shown));
}
