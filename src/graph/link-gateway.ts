// The Graph calls sod-sync makes, one HTTP request each, answering values instead of throwing.

import type {Client} from '@microsoft/microsoft-graph-client';
import type {Pair} from '../pair.js';
import {classifyError, type GraphFailure} from './graph-failure.js';
import {accessPackageODataId, addLinkPath, incompatibleAccessPackagesPath, removeLinkPath} from './link-paths.js';

export type CallResult<T = undefined> = {ok: true; value: T} | {ok: false; failure: GraphFailure};

export interface LinksPage {
	/** Ids (lower case) of the packages on this page. */
	ids: string[];
	/** The next page's URL (same origin as Graph, checked), if any. */
	nextLink: string | undefined;
}

/** One request each; `signal` ends the request early (timeout or shutdown). */
export interface LinkGateway {
	addLink(pair: Pair, signal: AbortSignal): Promise<CallResult>;
	removeLink(pair: Pair, signal: AbortSignal): Promise<CallResult>;
	/** A page of `accessPackageId`'s incompatible packages: the first when `nextLink` is undefined. */
	listLinksPage(accessPackageId: string, nextLink: string | undefined, signal: AbortSignal): Promise<CallResult<LinksPage>>;
}

export interface GraphLinkGatewayOptions {
	graphBaseUrl: URL;
	apiVersion: string;
	now?: () => number;
}

export class GraphLinkGateway implements LinkGateway {
	readonly #client: Client;
	readonly #graphBaseUrl: URL;
	readonly #apiVersion: string;
	readonly #now: () => number;

	constructor(client: Client, options: GraphLinkGatewayOptions) {
		this.#client = client;
		this.#graphBaseUrl = options.graphBaseUrl;
		this.#apiVersion = options.apiVersion;
		this.#now = options.now ?? Date.now;
	}

	async addLink(pair: Pair, signal: AbortSignal): Promise<CallResult> {
		const body = {'@odata.id': accessPackageODataId(this.#graphBaseUrl, this.#apiVersion, pair.incompatibleAccessPackageId)};
		return this.#call(() => this.#client.api(addLinkPath(pair.accessPackageId)).option('signal', signal).post(body));
	}

	async removeLink(pair: Pair, signal: AbortSignal): Promise<CallResult> {
		return this.#call(() =>
			this.#client.api(removeLinkPath(pair.accessPackageId, pair.incompatibleAccessPackageId)).option('signal', signal).delete(),
		);
	}

	async listLinksPage(accessPackageId: string, nextLink: string | undefined, signal: AbortSignal): Promise<CallResult<LinksPage>> {
		if (nextLink !== undefined && !this.#isGraphUrl(nextLink)) {
			return {
				ok: false,
				failure: {kind: 'bad-request', code: 'UntrustedNextLink', message: 'Graph returned an @odata.nextLink on another origin; not followed'},
			};
		}

		// The SDK parses only https:// URLs as absolute, so a nextLink is split into its version and relative path here.
		const [version, path] =
			nextLink === undefined ? [this.#apiVersion, `${incompatibleAccessPackagesPath(accessPackageId)}?$select=id`] : splitGraphUrl(nextLink);
		const result = await this.#call<{value?: Array<{id?: unknown}>; '@odata.nextLink'?: unknown}>(() =>
			this.#client.api(path).version(version).option('signal', signal).get(),
		);
		if (!result.ok) {
			return result;
		}

		const ids = (result.value?.value ?? [])
			.map(item => (typeof item?.id === 'string' ? item.id.toLowerCase() : undefined))
			.filter((id): id is string => id !== undefined);
		const next = result.value?.['@odata.nextLink'];
		return {ok: true, value: {ids, nextLink: typeof next === 'string' ? next : undefined}};
	}

	#isGraphUrl(url: string): boolean {
		try {
			return new URL(url).origin === this.#graphBaseUrl.origin;
		} catch {
			return false;
		}
	}

	async #call<T = undefined>(send: () => Promise<T>): Promise<CallResult<T>> {
		try {
			return {ok: true, value: await send()};
		} catch (error) {
			return {ok: false, failure: classifyError(error, this.#now())};
		}
	}
}

/** `https://graph.microsoft.com/v1.0/a/b?x=1` -> `['v1.0', '/a/b?x=1']`. */
function splitGraphUrl(url: string): [string, string] {
	const {pathname, search} = new URL(url);
	const [, version = '', ...rest] = pathname.split('/');
	return [version, `/${rest.join('/')}${search}`];
}
