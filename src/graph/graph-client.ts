// Builds the Graph SDK client sod-sync uses for every call: the bearer token goes to the configured Graph origin
// and nowhere else (http for the simulator, https for Graph), and the SDK's own retry and redirect handlers are left
// out, because retries are decided once, by the engine, under a gate shared by every request in the process.

import {Client, type Context, type Middleware} from '@microsoft/microsoft-graph-client';
import type {TokenCredential} from '@azure/identity';
import {transportErrorNames} from './graph-failure.js';

export interface TokenSource {
	getToken(): Promise<string>;
}

/** A fixed bearer token (`GRAPH_ACCESS_TOKEN`): for the local simulator and tests. */
export function staticTokenSource(token: string): TokenSource {
	return {getToken: async () => token};
}

/** Tokens from an Azure credential for `{origin}/.default`; the credential caches and refreshes them. */
export function credentialTokenSource(credential: TokenCredential, graphBaseUrl: URL): TokenSource {
	const scope = `${graphBaseUrl.origin}/.default`;
	return {
		async getToken() {
			const token = await credential.getToken(scope);
			if (!token) {
				throw new Error(`the credential returned no token for ${scope}`);
			}

			return token.token;
		},
	};
}

export interface GraphClientOptions {
	graphBaseUrl: URL;
	apiVersion: string;
	tokenSource: TokenSource;
}

export function createGraphClient(options: GraphClientOptions): Client {
	const authentication = new OriginBoundAuthentication(options.graphBaseUrl.origin, options.tokenSource);
	const transport = new Transport();
	authentication.setNext(transport);
	return Client.initWithMiddleware({
		baseUrl: options.graphBaseUrl.origin,
		defaultVersion: options.apiVersion,
		middleware: authentication,
	});
}

/** Adds `Authorization` when the request goes to the Graph origin, and removes it from a request to anywhere else. */
export class OriginBoundAuthentication implements Middleware {
	readonly #origin: string;
	readonly #tokenSource: TokenSource;
	#next: Middleware | undefined;

	constructor(origin: string, tokenSource: TokenSource) {
		this.#origin = origin;
		this.#tokenSource = tokenSource;
	}

	async execute(context: Context): Promise<void> {
		const url = typeof context.request === 'string' ? context.request : context.request.url;
		context.options ??= {};
		const headers = new Headers(context.options.headers as ConstructorParameters<typeof Headers>[0]);
		headers.delete('authorization');
		if (sameOrigin(url, this.#origin)) {
			let token: string;
			try {
				token = await this.#tokenSource.getToken();
			} catch (error) {
				// The credential's own message names the cause (no managed identity, expired secret, ...) and holds no token.
				throw namedError(transportErrorNames.token, `could not get a Graph token: ${(error as Error).message}`);
			}

			headers.set('authorization', `Bearer ${token}`);
		}

		context.options.headers = Object.fromEntries(headers);
		await this.#next!.execute(context);
	}

	setNext(next: Middleware): void {
		this.#next = next;
	}
}

/** The last middleware: fetch with redirects refused, and errors named so their kind survives the SDK's wrapping. */
class Transport implements Middleware {
	async execute(context: Context): Promise<void> {
		try {
			context.response = await fetch(context.request, {...context.options, redirect: 'manual'} as RequestInit);
		} catch (error) {
			throw transportError(error);
		}
	}

	setNext(): void {
		// The end of the chain.
	}
}

function transportError(error: unknown): Error {
	const value = error as {name?: string; message?: string; cause?: {code?: string; message?: string}};
	if (value?.name === 'TimeoutError') {
		return namedError(transportErrorNames.timeout, 'no response before the request timeout');
	}

	if (value?.name === 'AbortError') {
		return namedError(transportErrorNames.aborted, 'the request was cancelled');
	}

	const cause = value?.cause?.code ?? value?.cause?.message;
	return namedError(transportErrorNames.network, cause ? `${value?.message ?? 'fetch failed'} (${cause})` : String(value?.message ?? error));
}

function namedError(name: string, message: string): Error {
	const error = new Error(message);
	error.name = name;
	return error;
}

function sameOrigin(url: string, origin: string): boolean {
	try {
		return new URL(url).origin === origin;
	} catch {
		return false;
	}
}
