// The Graph operations sod-sync performs, sent one per HTTP request or up to 20 in one `$batch`, through the Graph SDK.
// Every call answers values, never throws: each operation's outcome is classified here, where its response arrives.

import type {Client} from '@microsoft/microsoft-graph-client';
import type {Pair, PairKind} from '../pair/pair.js';
import {classifyAnswer, readBatchItem, readSdkError, type BatchItem, type GraphFailure} from './graph-failure.js';
import {limitPercentageHeader, parseLimitPercentage} from './retry-after.js';
import {
	accessPackagesListPath,
	additionalAccessPath,
	addLinkPath,
	linkListPath,
	packageAssignmentsPath,
	removeLinkPath,
	targetODataId,
	transitiveUsersPath,
} from './link-paths.js';

export type CallResult<T = undefined> = {kind: 'ok'; value: T} | {kind: 'failed'; failure: GraphFailure};

export type LinkOperation =
	/** Writes a pair's link: to the package's incompatible packages or incompatible groups, by the pair's kind. */
	| {kind: 'add'; pair: Pair}
	| {kind: 'remove'; pair: Pair}
	/** A page of `accessPackageId`'s incompatible packages: the first when `nextLink` is undefined. */
	| {kind: 'list'; accessPackageId: string; nextLink: string | undefined}
	/** A page of the tenant's access packages. */
	| {kind: 'list-packages'; nextLink: string | undefined}
	/** A page of the users who hold both packages of a rule (assignments to `accessPackageId`). */
	| {kind: 'additional-access'; accessPackageId: string; incompatibleAccessPackageId: string; nextLink: string | undefined}
	/** A page of `accessPackageId`'s incompatible groups. */
	| {kind: 'list-groups'; accessPackageId: string; nextLink: string | undefined}
	/** A page of the assignments of `accessPackageId`, with their users. */
	| {kind: 'assignments'; accessPackageId: string; nextLink: string | undefined}
	/** A page of the users in `groupId` (their ids), nested groups walked by Graph. */
	| {kind: 'transitive-users'; groupId: string; nextLink: string | undefined};

/** The first page of `accessPackageId`'s incompatible packages or groups: the read that verifies, compares or pre-images. */
export function linkListOperation(accessPackageId: string, kind: PairKind): PagedOperation {
	return {kind: kind === 'group' ? 'list-groups' : 'list', accessPackageId, nextLink: undefined};
}

/** The operations that read a paged collection. */
export type PagedOperation = Extract<LinkOperation, {nextLink: string | undefined}>;

export interface LinksPage {
	/** Ids (lower case) of the packages on this page. */
	ids: string[];
	/** The next page's URL (same origin as Graph), if any. */
	nextLink: string | undefined;
}

/** Graph takes at most 20 requests in one `$batch`. */
export const maximumBatchSize = 20;

export interface LinkGateway {
	/** One operation, one HTTP request; `signal` ends it early (timeout or shutdown). */
	execute(operation: LinkOperation, signal: AbortSignal): Promise<CallResult<unknown>>;
	/**
	 * Up to 20 operations in one `$batch` request; one result per operation, in order. A failure of the batch request
	 * itself (429, 5xx, a dropped connection) is every operation's failure.
	 */
	executeBatch(operations: readonly LinkOperation[], signal: AbortSignal): Promise<Array<CallResult<unknown>>>;
}

export interface GraphLinkGatewayOptions {
	graphBaseUrl: URL;
	apiVersion: string;
	now?: () => number;
	/** Told the share of its limit the app has spent when a `$batch` item carries Graph's early warning. */
	onLimitWarning?: (used: number) => void;
}

interface RequestSpec {
	method: 'GET' | 'POST' | 'DELETE';
	/** Relative to the version, with its query. */
	path: string;
	version: string;
	body?: unknown;
}

export class GraphLinkGateway implements LinkGateway {
	readonly #client: Client;
	readonly #graphBaseUrl: URL;
	readonly #apiVersion: string;
	readonly #now: () => number;
	readonly #onLimitWarning: ((used: number) => void) | undefined;

	constructor(client: Client, options: GraphLinkGatewayOptions) {
		this.#client = client;
		this.#graphBaseUrl = options.graphBaseUrl;
		this.#apiVersion = options.apiVersion;
		this.#now = options.now ?? Date.now;
		this.#onLimitWarning = options.onLimitWarning;
	}

	async execute(operation: LinkOperation, signal: AbortSignal): Promise<CallResult<unknown>> {
		const spec = this.#spec(operation);
		if (spec.kind !== 'ok') {
			return spec;
		}

		const {method, path, version, body} = spec.value;
		try {
			const request = this.#client.api(path).version(version).option('signal', signal);
			const value: unknown = method === 'GET' ? await request.get() : method === 'POST' ? await request.post(body) : await request.delete();
			return {kind: 'ok', value};
		} catch (error) {
			return {kind: 'failed', failure: classifyAnswer(readSdkError(error), this.#now())};
		}
	}

	async executeBatch(operations: readonly LinkOperation[], signal: AbortSignal): Promise<Array<CallResult<unknown>>> {
		if (operations.length === 0 || operations.length > maximumBatchSize) {
			throw new RangeError(`Expected 1 to ${maximumBatchSize} operations in a batch, got ${operations.length}`);
		}

		const results = new Array<CallResult<unknown> | undefined>(operations.length);
		const requests: Array<{id: string; method: string; url: string; headers?: Record<string, string>; body?: unknown}> = [];
		const single: number[] = [];
		for (const [index, operation] of operations.entries()) {
			const spec = this.#spec(operation);
			if (spec.kind !== 'ok') {
				results[index] = spec;
			} else if (spec.value.version === this.#apiVersion) {
				const {method, path, body} = spec.value;
				requests.push({id: String(index), method, url: path, ...(body === undefined ? {} : {headers: {'content-type': 'application/json'}, body})});
			} else {
				single.push(index); // A nextLink on another version cannot ride in this version's $batch.
			}
		}

		if (requests.length > 0) {
			let responses: BatchItem[];
			try {
				const answer = (await this.#client.api('/$batch').version(this.#apiVersion).option('signal', signal).post({requests})) as {
					responses?: unknown;
				};
				responses = Array.isArray(answer?.responses) ? (answer.responses as BatchItem[]) : [];
			} catch (error) {
				// A non-2xx answer that still carries `responses` (424 when items were throttled, by Microsoft's throttling
				// page) is read item by item, as a 200 is; only an answer without readable items fails every operation.
				responses = batchResponsesIn(error);
				if (responses.length === 0) {
					const failure = classifyAnswer(readSdkError(error), this.#now());
					for (const request of requests) {
						results[Number(request.id)] = {kind: 'failed', failure};
					}
				}
			}

			// Graph answers in any order: match by id.
			for (const response of responses) {
				const index = typeof response?.id === 'string' ? Number(response.id) : Number.NaN;
				if (Number.isInteger(index) && index >= 0 && index < operations.length && results[index] === undefined) {
					results[index] = this.#readBatchResponse(response);
				}
			}
		}

		for (const index of single) {
			// eslint-disable-next-line no-await-in-loop
			results[index] = await this.execute(operations[index]!, signal);
		}

		return results.map(
			result =>
				result ?? {kind: 'failed', failure: {kind: 'server', code: 'MissingBatchResponse', message: 'the $batch answer had no response for this request'}},
		);
	}

	#readBatchResponse(response: BatchItem): CallResult<unknown> {
		const answer = readBatchItem(response);
		const used = parseLimitPercentage(headerOf(response, limitPercentageHeader));
		if (used !== undefined) {
			this.#onLimitWarning?.(used);
		}

		if (answer.status >= 200 && answer.status < 300) {
			return {kind: 'ok', value: response.body};
		}

		return {kind: 'failed', failure: classifyAnswer(answer, this.#now())};
	}

	/** The request for `operation`, or a failure value when it cannot be built (an id from Graph that is not a GUID). */
	#spec(operation: LinkOperation): CallResult<RequestSpec> {
		try {
			return this.#build(operation);
		} catch (error) {
			return {kind: 'failed', failure: {kind: 'bad-request', code: 'InvalidRequest', message: `the request could not be built: ${(error as Error).message}`}};
		}
	}

	#build(operation: LinkOperation): CallResult<RequestSpec> {
		switch (operation.kind) {
			case 'add': {
				const body = {'@odata.id': targetODataId(this.#graphBaseUrl, this.#apiVersion, operation.pair)};
				return {kind: 'ok', value: {method: 'POST', path: addLinkPath(operation.pair), version: this.#apiVersion, body}};
			}

			case 'remove': {
				return {kind: 'ok', value: {method: 'DELETE', path: removeLinkPath(operation.pair), version: this.#apiVersion}};
			}

			case 'list':
			case 'list-packages':
			case 'list-groups':
			case 'transitive-users':
			case 'assignments':
			case 'additional-access': {
				if (operation.nextLink === undefined) {
					return {kind: 'ok', value: {method: 'GET', path: firstPagePath(operation, this.#apiVersion), version: this.#apiVersion}};
				}

				const next = splitGraphUrl(operation.nextLink, this.#graphBaseUrl);
				if (!next) {
					return {
						kind: 'failed',
						failure: {
							kind: 'bad-request',
							code: 'UntrustedNextLink',
							message: 'Graph returned an @odata.nextLink on another origin, or with another URL inside it; not followed',
						},
					};
				}

				return {kind: 'ok', value: {method: 'GET', path: next.path, version: next.version}};
			}
		}
	}
}

/** A `$batch` item's header, by name in any case. */
function headerOf(response: BatchItem, name: string): string | undefined {
	const headers = (response as {headers?: unknown}).headers;
	if (typeof headers !== 'object' || headers === null) {
		return undefined;
	}

	const entry = Object.entries(headers as Record<string, unknown>).find(([key]) => key.toLowerCase() === name);
	return typeof entry?.[1] === 'string' ? entry[1] : undefined;
}

/** The `responses` of a `$batch` answer the SDK threw for its status (its `body` is the parsed JSON or the text). */
function batchResponsesIn(error: unknown): BatchItem[] {
	let body = (error as {body?: unknown} | null)?.body;
	if (typeof body === 'string') {
		try {
			body = JSON.parse(body) as unknown;
		} catch {
			return [];
		}
	}

	const responses = (body as {responses?: unknown} | null | undefined)?.responses;
	return Array.isArray(responses) ? (responses as BatchItem[]) : [];
}

function firstPagePath(operation: PagedOperation, apiVersion: string): string {
	switch (operation.kind) {
		case 'list': {
			return `${linkListPath(operation.accessPackageId, 'package')}?$select=id`;
		}

		case 'list-packages': {
			return accessPackagesListPath();
		}

		case 'list-groups': {
			return `${linkListPath(operation.accessPackageId, 'group')}?$select=id,displayName`;
		}

		case 'transitive-users': {
			return transitiveUsersPath(operation.groupId);
		}

		case 'additional-access': {
			return additionalAccessPath(apiVersion, operation.accessPackageId, operation.incompatibleAccessPackageId);
		}

		case 'assignments': {
			return packageAssignmentsPath(apiVersion, operation.accessPackageId);
		}
	}
}

/** Reads a collection page's body: its items and the next link. */
export function readPage(value: unknown): {items: unknown[]; nextLink: string | undefined} {
	const body = value as {value?: unknown; '@odata.nextLink'?: unknown} | undefined;
	const next = body?.['@odata.nextLink'];
	return {items: Array.isArray(body?.value) ? body.value : [], nextLink: typeof next === 'string' ? next : undefined};
}

/** Reads a link-list page's body into ids (lower case) and the next link. */
export function readLinksPage(value: unknown): LinksPage {
	const {items, nextLink} = readPage(value);
	return {ids: packageIds(items), nextLink};
}

/** The `id`s of a page's items, lower case. */
export function packageIds(items: readonly unknown[]): string[] {
	return items
		.map(item => {
			const id = (item as {id?: unknown} | null)?.id;
			return typeof id === 'string' ? id.toLowerCase() : undefined;
		})
		.filter((id): id is string => id !== undefined);
}

/**
 * `https://graph.microsoft.com/v1.0/a/b?x=1` -> `{version: 'v1.0', path: '/a/b?x=1'}`, or undefined when the URL is not on
 * the Graph origin (a nextLink elsewhere is never followed: the token must not go there, and the data is not Graph's).
 * The SDK reads only https:// URLs as absolute, so the split is done here for the simulator's http:// too.
 */
export function splitGraphUrl(url: string, graphBaseUrl: URL): {version: string; path: string} | undefined {
	let parsed: URL;
	try {
		parsed = new URL(url);
	} catch {
		return undefined;
	}

	if (parsed.origin !== graphBaseUrl.origin || parsed.username || parsed.password) {
		return undefined;
	}

	// A path or query that holds a scheme or an authority (`.../x?u=https://elsewhere`, `//host/...`) is how a URL
	// smuggles another host past an origin check (the SDK reads any `https://` in a path as an absolute URL).
	let decoded: string;
	try {
		decoded = decodeURIComponent(`${parsed.pathname}${parsed.search}`);
	} catch {
		return undefined;
	}

	if (/[a-z][\w+.-]*:\/\//i.test(decoded) || decoded.includes('//')) {
		return undefined;
	}

	const [, version = '', ...rest] = parsed.pathname.split('/');
	return {version, path: `/${rest.join('/')}${parsed.search}`};
}
