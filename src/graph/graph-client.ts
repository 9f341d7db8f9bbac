// Builds the Graph SDK client sod-sync uses for every call: the bearer token goes to the configured Graph origin
// and nowhere else (http for the simulator, https for Graph), and the SDK's own retry and redirect handlers are left
// out, because retries are decided once, by the engine, under a gate shared by every request in the process.

import {Agent as HttpAgent, request as httpRequest} from 'node:http';
import {Agent as HttpsAgent, request as httpsRequest} from 'node:https';
import {Client, type Context, type Middleware} from '@microsoft/microsoft-graph-client';
import type {TokenCredential} from '@azure/identity';
import {transportErrorNames} from './graph-failure.js';
import {limitPercentageHeader, parseLimitPercentage} from './retry-after.js';

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
	/** Told the share of its limit the app has spent when an answer carries Graph's early warning. */
	onLimitWarning?: (used: number) => void;
}

export function createGraphClient(options: GraphClientOptions): Client {
	const authentication = new OriginBoundAuthentication(options.graphBaseUrl.origin, options.tokenSource);
	const transport = new Transport(options.graphBaseUrl.origin, options.onLimitWarning);
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
		const headers: Record<string, string> = {};
		for (const [name, value] of headerEntries(context.options.headers)) {
			if (name.toLowerCase() !== 'authorization') {
				headers[name] = value;
			}
		}

		if (sameOrigin(url, this.#origin)) {
			let token: string;
			try {
				token = await this.#tokenSource.getToken();
			} catch (error) {
				// The credential's own message names the cause (no managed identity, expired secret, ...) and holds no token.
				throw namedError(transportErrorNames.token, `could not get a Graph token: ${(error as Error).message}`);
			}

			headers.authorization = `Bearer ${token}`;
		}

		context.options.headers = headers;
		await this.#next!.execute(context);
	}

	setNext(next: Middleware): void {
		this.#next = next;
	}
}

/**
 * The last middleware: one HTTP request over node:http(s) with keep-alive, answered as a fetch `Response` (what the
 * SDK reads). Node's own client costs about half the CPU of its fetch per request, and sod-sync sends many; redirects
 * are not followed; errors are named so that their kind survives the SDK's re-wrapping.
 */
class Transport implements Middleware {
	readonly #origin: string;
	readonly #onLimitWarning: ((used: number) => void) | undefined;
	readonly #httpAgent = new HttpAgent({keepAlive: true, scheduling: 'lifo'});
	readonly #httpsAgent = new HttpsAgent({keepAlive: true, scheduling: 'lifo'});

	/** Sends to `origin` only: whatever URL the SDK builds (it reads any `https://` inside a path as absolute), nothing else leaves. */
	constructor(origin: string, onLimitWarning?: (used: number) => void) {
		this.#origin = origin;
		this.#onLimitWarning = onLimitWarning;
	}

	async execute(context: Context): Promise<void> {
		const url = new URL(typeof context.request === 'string' ? context.request : context.request.url);
		if (url.origin !== this.#origin || !sameOrigin(url.href, this.#origin)) {
			throw namedError(transportErrorNames.untrustedOrigin, `refused to send a request to ${url.origin}: Graph is ${this.#origin}`);
		}

		const options = context.options ?? {};
		const signal = options.signal ?? undefined;
		const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
		try {
			context.response = await new Promise<Response>((resolve, reject) => {
				const request = send(
					url,
					{
						method: options.method ?? 'GET',
						headers: options.headers as Record<string, string> | undefined,
						agent: url.protocol === 'https:' ? this.#httpsAgent : this.#httpAgent,
						signal,
					},
					response => {
						const chunks: Buffer[] = [];
						response.on('data', (chunk: Buffer) => chunks.push(chunk));
						response.on('error', reject);
						response.on('end', () => {
							const status = response.statusCode ?? 0;
							const used = parseLimitPercentage([response.headers[limitPercentageHeader]].flat()[0]);
							if (used !== undefined) {
								this.#onLimitWarning?.(used);
							}

							const headers = new Headers();
							for (const [name, value] of Object.entries(response.headers)) {
								if (value !== undefined) {
									headers.set(name, Array.isArray(value) ? value.join(', ') : value);
								}
							}

							resolve(new BufferedResponse(status, response.statusMessage ?? '', headers, Buffer.concat(chunks)) as unknown as Response);
						});
					},
				);
				request.on('error', reject);
				request.end(typeof options.body === 'string' || options.body instanceof Uint8Array ? options.body : undefined);
			});
		} catch (error) {
			// An abort surfaces as a plain AbortError: the signal's reason says whether it was the request timeout.
			throw transportError(signal?.aborted ? (signal.reason as Error) : error);
		}
	}

	setNext(): void {
		// The end of the chain.
	}
}

/**
 * The part of a fetch `Response` the Graph SDK reads, over a body already in memory: a real `Response` would wrap the
 * bytes in a web stream only for the SDK to read them back at once, and that is most of a request's CPU here.
 */
class BufferedResponse {
	readonly ok: boolean;
	readonly body = null;
	readonly bodyUsed = false;
	readonly redirected = false;
	readonly type = 'basic';
	readonly url = '';

	constructor(
		readonly status: number,
		readonly statusText: string,
		readonly headers: Headers,
		readonly bytes: Buffer,
	) {
		this.ok = status >= 200 && status < 300;
	}

	async text(): Promise<string> {
		return this.bytes.toString('utf8');
	}

	async json(): Promise<unknown> {
		return JSON.parse(this.bytes.toString('utf8')) as unknown;
	}

	async arrayBuffer(): Promise<ArrayBuffer> {
		return this.bytes.buffer.slice(this.bytes.byteOffset, this.bytes.byteOffset + this.bytes.byteLength) as ArrayBuffer;
	}

	async blob(): Promise<Blob> {
		return new Blob([this.bytes]);
	}

	clone(): BufferedResponse {
		return new BufferedResponse(this.status, this.statusText, new Headers(this.headers), this.bytes);
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

	const code = (error as {code?: string})?.code;
	const message = String(value?.message ?? error);
	const name = code !== undefined && connectionNeverMade.has(code) ? transportErrorNames.unreachable : transportErrorNames.network;
	return namedError(name, code && !message.includes(code) ? `${message} (${code})` : message);
}

/** Socket errors raised before a connection exists: nothing was sent, so nothing can have been applied. */
const connectionNeverMade = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

function namedError(name: string, message: string): Error {
	const error = new Error(message);
	error.name = name;
	return error;
}

/** True when `url` is on `origin` exactly: the origin followed by a slash (so no other port, host or user-info trick). */
function sameOrigin(url: string, origin: string): boolean {
	return url.startsWith(`${origin}/`);
}

function headerEntries(headers: unknown): Array<[string, string]> {
	if (headers === undefined || headers === null) {
		return [];
	}

	if (headers instanceof Headers) {
		return [...headers.entries()];
	}

	if (Array.isArray(headers)) {
		return headers as Array<[string, string]>;
	}

	return Object.entries(headers as Record<string, string>);
}
