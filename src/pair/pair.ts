// An incompatibility pair: holders of `accessPackageId` cannot request `incompatibleAccessPackageId`.
// Graph links are one-way, so a pair is directed.

import {printable} from '../text/untrusted-text.js';

export interface Pair {
	/** The access package whose `incompatibleAccessPackages` list receives the link (lower-case GUID). */
	readonly accessPackageId: string;
	/** The access package marked incompatible with it (lower-case GUID). */
	readonly incompatibleAccessPackageId: string;
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

const fieldNames = ['accessPackageId', 'incompatibleAccessPackageId'] as const;

/**
 * Checks one raw pair (any value from a message or a file) and returns the normalised pair or the reason in words.
 * Only own properties count, so `__proto__` tricks cannot supply an id.
 */
export function checkPair(raw: unknown): PairCheck {
	if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
		return {kind: 'invalid', reason: `a pair must be an object with ${fieldNames.join(' and ')}, got ${describe(raw)}`};
	}

	const ids: string[] = [];
	for (const name of fieldNames) {
		const value = Object.hasOwn(raw, name) ? (raw as Record<string, unknown>)[name] : undefined;
		if (value === undefined || value === null || value === '') {
			return {kind: 'invalid', reason: `${name} is missing`};
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

	const [accessPackageId, incompatibleAccessPackageId] = ids as [string, string];
	if (accessPackageId === incompatibleAccessPackageId) {
		return {kind: 'invalid', reason: `an access package cannot be incompatible with itself (${accessPackageId})`};
	}

	return {kind: 'valid', pair: {accessPackageId, incompatibleAccessPackageId}};
}

export function pairKey(pair: Pair): string {
	return `${pair.accessPackageId}/${pair.incompatibleAccessPackageId}`;
}

export function reversePair(pair: Pair): Pair {
	return {accessPackageId: pair.incompatibleAccessPackageId, incompatibleAccessPackageId: pair.accessPackageId};
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
