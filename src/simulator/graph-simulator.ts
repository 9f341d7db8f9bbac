// A local stand-in for the Microsoft Graph endpoints sod-sync calls, on loopback, in Graph's wire format:
// access packages and their incompatible links (add, list with paging, remove), `$batch`, bearer-token checks, Graph's
// error body, throttling as Graph and Dev Proxy describe it, and faults on demand. Tests and `sod-sync simulate-graph`
// both use it; where real Graph's answer is unknown (REFERENCE.md), the behaviour is a setting.

import {randomUUID} from 'node:crypto';
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import {AppRoleGrants} from './app-role-grants.js';
import {graphError, type Reply} from './graph-reply.js';
import {SimulatedTenant, type RouteName, type SimulatedAssignment, type SimulatedUser} from './tenant.js';
import {ThrottleModel, type ThrottleOptions} from './throttle-model.js';
import {countAnswer, emptyStats, type SimulatorStats} from './simulator-stats.js';

export type {RetryAfterFormat, ThrottleOptions} from './throttle-model.js';
export type {SimulatedAssignment} from './tenant.js';
export {timelineBinMs, type SimulatorStats} from './simulator-stats.js';
import {seededRandom} from './seeded-random.js';



export interface FaultOptions {
	/** Share of requests answered 500/502/503/504 (before any work). Defaults to 0. */
	serverErrorRate?: number;
	/** Share of writes applied and then answered by a dropped connection. Defaults to 0. */
	resetAfterWriteRate?: number;
	/** Added to every response. Defaults to 0. */
	latencyMs?: number;
	/** Up to this much more (or less), uniformly. Defaults to 0. */
	jitterMs?: number;
	/** Adds naming a package answer 404 this many times first (replication lag of a new package). Defaults to 0. */
	notFoundFirstAdds?: number;
	/** An outage: this long after the first Graph request, stop listening (connections refused) for `outageMs`. */
	outageAfterMs?: number;
	/** How long the outage lasts; the simulator then listens again on the same port. Defaults to no outage. */
	outageMs?: number;
	/**
	 * Every page of a list names itself as `@odata.nextLink` (a broken or hostile service): a reader that does not notice
	 * reads forever. Defaults to false.
	 */
	loopingNextLink?: boolean;
}

export interface SimulatorOptions {
	/** The bearer token the simulator accepts. Defaults to `sim-token`. */
	token?: string;
	/**
	 * Defaults to true. False accepts requests without a token: for the benchmark's baseline, which uses the SDK's
	 * default middleware, and that sends tokens only to https:// Graph hosts.
	 */
	requireToken?: boolean;
	/** Package ids to hold (lower-case GUIDs are kept as given). */
	packages?: string[];
	/** Packages to generate (deterministically, from `seed`) when `packages` is absent. Defaults to `defaultPackageCount` (50). */
	packageCount?: number;
	/** Items per page of a list. Defaults to 100. */
	pageSize?: number;
	/** What adding an existing link answers; Graph's real answer is undocumented. Defaults to 400. */
	duplicateAddStatus?: 204 | 400 | 409;
	throttle?: ThrottleOptions;
	faults?: FaultOptions;
	/** Seeds faults, jitter and generated ids. Defaults to 1. */
	seed?: number;
	/** Keep `METHOD path` of every Graph request (and batch item) in `stats.log`. Defaults to false (the log grows). */
	logRequests?: boolean;
	/** Called as each Graph request arrives (not the `_simulator` routes), with the time: tests watch who sent what when. */
	onRequest?: (method: string, path: string, at: number) => void;
	/** Defaults to 0 (any free port). */
	port?: number;
	/** Defaults to 127.0.0.1. */
	host?: string;
}

/** A one-off answer for the next requests that match, ahead of everything else (tests use it to script a story). */
export interface ScriptedFault {
	method?: string;
	/** Matched against the path after the version, e.g. `/identityGovernance/...`. */
	path?: RegExp;
	/** How many matching requests get it. Defaults to 1. */
	times?: number;
	reply?: Reply;
	/** Apply the request, then drop the connection without an answer. */
	resetAfterWrite?: boolean;
}

/** Access packages a simulator generates when not told how many. */
export const defaultPackageCount = 50;

const versions = new Set(['v1.0', 'beta']);
const maximumBatchRequests = 20;

export class GraphSimulator {
	readonly #options: Required<Pick<SimulatorOptions, 'token' | 'pageSize' | 'duplicateAddStatus'>> & SimulatorOptions;
	readonly #random: () => number;
	readonly #tenant: SimulatedTenant;
	readonly #scripts: ScriptedFault[] = [];
	#server: Server | undefined;
	#baseUrl = '';
	#inFlight = 0;
	#throttle: ThrottleModel;
	#outageScheduled = false;
	#closed = false;
	#endOutage: (() => void) | undefined;
	stats: SimulatorStats = emptyStats();
	/** Service principals and app role assignments (what `sod-sync grant` reads and writes). */
	readonly grants = new AppRoleGrants();

	private constructor(options: SimulatorOptions) {
		this.#options = {token: 'sim-token', pageSize: 100, duplicateAddStatus: 400, ...options};
		this.#random = seededRandom(options.seed ?? 1);
		this.#throttle = new ThrottleModel(options.throttle);
		this.#tenant = new SimulatedTenant(
			() => ({
				pageSize: this.#options.pageSize,
				duplicateAddStatus: this.#options.duplicateAddStatus,
				notFoundFirstAdds: this.#options.faults?.notFoundFirstAdds ?? 0,
				loopingNextLink: this.#options.faults?.loopingNextLink ?? false,
				baseUrl: this.#baseUrl,
			}),
			{
				route: name => this.#route(name),
				unmatched: request => this.stats.unmatched.push(request),
				wrote: () => {
					this.stats.lastWriteAt = Date.now();
				},
			},
		);
		const ids = options.packages ?? Array.from({length: options.packageCount ?? defaultPackageCount}, () => this.#generateId());
		for (const id of ids) {
			this.addPackage(id);
		}
	}

	/** Starts a simulator on loopback; `baseUrl` is then the `GRAPH_BASE_URL` to use. */
	static async start(options: SimulatorOptions = {}): Promise<GraphSimulator> {
		const simulator = new GraphSimulator(options);
		await simulator.#listen(options.port ?? 0, options.host ?? '127.0.0.1');
		return simulator;
	}

	get baseUrl(): string {
		return this.#baseUrl;
	}

	get token(): string {
		return this.#options.token;
	}

	get packageIds(): string[] {
		return this.#tenant.packageIds;
	}

	addPackage(id: string, displayName?: string, catalogId?: string): void {
		this.#tenant.addPackage(id, displayName, catalogId);
	}

	/** Adds a link directly (seeding a tenant's existing state). */
	link(accessPackageId: string, incompatibleAccessPackageId: string): void {
		this.#tenant.link(accessPackageId, incompatibleAccessPackageId);
	}

	/** Removes a link directly (a change made outside sod-sync, in the portal say). */
	unlink(accessPackageId: string, incompatibleAccessPackageId: string): void {
		this.#tenant.unlink(accessPackageId, incompatibleAccessPackageId);
	}

	/** A group; `addMember` fills it with users and groups (nested membership is walked for transitiveMembers). */
	addGroup(id: string, displayName?: string): void {
		this.#tenant.addGroup(id, displayName);
	}

	addUser(user: SimulatedUser): void {
		this.#tenant.addUser(user);
	}

	addMember(groupId: string, memberId: string): void {
		this.#tenant.addMember(groupId, memberId);
	}

	/** Marks a group incompatible with a package directly (seeding a tenant's state). */
	linkGroup(accessPackageId: string, groupId: string): void {
		this.#tenant.linkGroup(accessPackageId, groupId);
	}

	unlinkGroup(accessPackageId: string, groupId: string): void {
		this.#tenant.unlinkGroup(accessPackageId, groupId);
	}

	/** Every package-to-group link, as `A/G` strings, sorted. */
	allGroupLinks(): string[] {
		return this.#tenant.allGroupLinks();
	}

	/** Assigns a package to a user (seeding existing access); returns the assignment. */
	assign(accessPackageId: string, user: SimulatedAssignment['target']): SimulatedAssignment {
		return this.#tenant.assign({id: this.#generateId(), accessPackageId: accessPackageId.toLowerCase(), state: 'Delivered', target: user});
	}

	linksOf(accessPackageId: string): string[] {
		return this.#tenant.linksOf(accessPackageId);
	}

	hasLink(accessPackageId: string, incompatibleAccessPackageId: string): boolean {
		return this.#tenant.hasLink(accessPackageId, incompatibleAccessPackageId);
	}

	/** Every link, as `A/B` strings, sorted. */
	allLinks(): string[] {
		return this.#tenant.allLinks();
	}

	/** Queues a scripted answer; see `ScriptedFault`. */
	script(fault: ScriptedFault): void {
		this.#scripts.push({times: 1, ...fault});
	}

	/** Changes throttling or faults while running (a storm that starts mid-run, say). */
	configure(options: Pick<SimulatorOptions, 'throttle' | 'faults' | 'duplicateAddStatus'>): void {
		Object.assign(this.#options, options);
		if (options.throttle) {
			this.#throttle = new ThrottleModel(options.throttle);
		}
	}

	async close(): Promise<void> {
		this.#closed = true;
		this.#endOutage?.();
		const server = this.#server;
		if (!server) {
			return;
		}

		this.#server = undefined;
		await new Promise<void>(resolve => {
			server.close(() => resolve());
			server.closeAllConnections();
		});
	}

	/**
	 * Graph unreachable for `ms`: the listener closes and every open connection is dropped, so connections are refused;
	 * then it listens again on the same port.
	 */
	async outage(ms: number): Promise<void> {
		const server = this.#server;
		if (!server) {
			return;
		}

		const {hostname, port} = new URL(this.#baseUrl);
		this.#server = undefined;
		await new Promise<void>(resolve => {
			server.close(() => resolve());
			server.closeAllConnections();
		});
		// A timer that holds the process open (the server no longer does), ended early by close().
		await new Promise<void>(resolve => {
			const timer = setTimeout(resolve, ms);
			this.#endOutage = () => {
				clearTimeout(timer);
				resolve();
			};
		});
		this.#endOutage = undefined;
		if (!this.#closed) {
			await this.#listen(Number(port), hostname);
		}
	}

	async #listen(port: number, host: string): Promise<void> {
		const server = createServer((request, response) => {
			void this.#handle(request, response);
		});
		server.keepAliveTimeout = 30_000;
		await new Promise<void>((resolve, reject) => {
			server.once('error', reject);
			server.listen(port, host, () => resolve());
		});
		this.#server = server;
		const address = server.address() as AddressInfo;
		this.#baseUrl = `http://${host}:${address.port}`;
	}

	async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
		this.stats.requests++;
		this.#inFlight++;
		this.stats.peakConcurrency = Math.max(this.stats.peakConcurrency, this.#inFlight);
		try {
			const body = await readBody(request);
			const clientRequestId = headerValue(request.headers['client-request-id']) ?? randomUUID();
			const reply = await this.#answer(request, body, clientRequestId);
			await this.#delay();
			if (reply === 'reset') {
				this.stats.resets++;
				request.socket.destroy();
				return;
			}

			// Counted per operation: an itemized $batch's items were counted as they were answered (its envelope is not an
			// operation); a $batch answered whole counts its status once for each item it carried.
			if (this.#itemizedBatches.has(reply)) {
				this.stats.batchByStatus[reply.status] = (this.stats.batchByStatus[reply.status] ?? 0) + 1;
			} else if (!this.#uncounted.has(reply)) {
				for (let item = 0; item < operationsIn(request, body); item++) {
					this.#count(reply.status);
				}
			}

			send(response, reply, clientRequestId);
		} catch (error) {
			this.#count(500);
			send(response, graphError(500, 'InternalServerError', `simulator fault: ${(error as Error).message}`), randomUUID());
		} finally {
			this.#inFlight--;
		}
	}

	async #answer(request: IncomingMessage, body: string, clientRequestId: string): Promise<Reply | 'reset'> {
		const method = request.method ?? 'GET';
		const url = new URL(request.url ?? '/', this.#baseUrl);
		const [, version = '', ...rest] = url.pathname.split('/');
		const path = `/${rest.join('/')}`;
		const authorized = headerValue(request.headers.authorization) === `Bearer ${this.#options.token}`;
		if (version === '_simulator' && method === 'GET' && (authorized || this.#options.requireToken === false)) {
			// Not Graph: lets a process that did not start the simulator (the benchmark) read what it saw.
			this.stats.requests--;
			const own: Reply = path === '/links' ? {status: 200, body: {value: this.allLinks()}} : {status: 200, body: this.stats};
			this.#uncounted.add(own);
			return own;
		}

		this.stats.firstRequestAt ||= Date.now();
		this.#options.onRequest?.(method, url.pathname, Date.now());
		this.#scheduleOutage();
		if (!authorized && this.#options.requireToken !== false) {
			this.stats.unauthorized++;
			return graphError(401, 'InvalidAuthenticationToken', 'Access token is empty or invalid.');
		}

		if (!versions.has(version)) {
			this.stats.unmatched.push(`${method} ${url.pathname}`);
			return graphError(400, 'BadRequest', `Invalid version: ${version}`);
		}

		const throttle = this.#options.throttle;
		if (throttle?.maxConcurrentRequests !== undefined && this.#inFlight > throttle.maxConcurrentRequests) {
			return throttledReply(this.#throttle.refuse());
		}

		if (method === 'POST' && path === '/$batch') {
			this.#route('POST $batch');
			// Only a script naming the $batch path answers for the whole batch; the others answer its items.
			const scriptedBatch = this.#takeScript(method, path, true);
			if (scriptedBatch?.reply) {
				return scriptedBatch.reply;
			}

			const {reply, resetAfterWrite} = this.#batch(body, version, clientRequestId);
			return resetAfterWrite || (scriptedBatch?.resetAfterWrite ?? false) ? 'reset' : reply;
		}

		const scripted = this.#takeScript(method, path);
		if (scripted?.reply) {
			this.stats.operations++;
			return scripted.reply;
		}

		const throttled = this.#spendOperation();
		if (throttled) {
			return throttled;
		}

		const serverError = this.#serverFault();
		if (serverError) {
			return serverError;
		}

		const reply = this.#warned(this.#operation(method, path, url.search, body, headerValue(request.headers['content-type']), version));
		if (scripted?.resetAfterWrite || (isWrite(method) && reply.status < 300 && this.#chance(this.#options.faults?.resetAfterWriteRate))) {
			return 'reset';
		}

		return reply;
	}

	/** One Graph operation on the state; shared by direct requests and `$batch` items. */
	/** One Graph operation on the state; shared by direct requests and `$batch` items. */
	#operation(method: string, path: string, search: string, body: string, contentType: string | undefined, version: string): Reply {
		if (this.#options.logRequests) {
			this.stats.log.push(`${method} /${version}${path}${search}`);
		}

		return this.grants.answer(method, path.split('/').filter(Boolean), body, search, `${this.#baseUrl}/${version}${path}`) ?? this.#tenant.answer(method, path, search, body, contentType, version);
	}

	/** Answers a `$batch`; `resetAfterWrite` when the connection is to drop after a write in it was applied. */
	#batch(body: string, version: string, clientRequestId: string): {reply: Reply; resetAfterWrite: boolean} {
		let requests: unknown;
		try {
			requests = (JSON.parse(body) as {requests?: unknown}).requests;
		} catch {
			return {reply: graphError(400, 'BadRequest', 'The batch body is not valid JSON.'), resetAfterWrite: false};
		}

		if (!Array.isArray(requests) || requests.length === 0 || requests.length > maximumBatchRequests) {
			return {reply: graphError(400, 'BadRequest', `A batch holds 1 to ${maximumBatchRequests} requests.`), resetAfterWrite: false};
		}

		const invalid = (message: string) => ({reply: graphError(400, 'BadRequest', message), resetAfterWrite: false});
		let wrote = false;
		let scriptedReset = false;

		const ids = new Set<string>();
		const responses: Array<{id: string; status: number; headers: Record<string, string>; body?: unknown}> = [];
		for (const item of requests as Array<Record<string, unknown>>) {
			const id = typeof item?.id === 'string' ? item.id : '';
			const method = typeof item?.method === 'string' ? item.method.toUpperCase() : '';
			const url = typeof item?.url === 'string' ? item.url : '';
			if (id === '' || ids.has(id) || method === '' || url === '' || /^https?:/i.test(url)) {
				return invalid(`Invalid batch request ${JSON.stringify(id)}: needs a unique id, a method and a relative url.`);
			}

			ids.add(id);
			const headers = Object.fromEntries(
				Object.entries((item.headers ?? {}) as Record<string, unknown>).map(([name, value]) => [name.toLowerCase(), String(value)]),
			);
			const itemBody = item.body === undefined ? '' : JSON.stringify(item.body);
			if (item.body !== undefined && headers['content-type'] === undefined) {
				return invalid(`Batch request ${JSON.stringify(id)} has a body but no Content-Type header.`);
			}

			const [path = '', search = ''] = (url.startsWith('/') ? url : `/${url}`).split(/(?=\?)/);
			const {reply, resetAfterWrite} = this.#batchItem(method, path, search, itemBody, headers['content-type'], version);
			wrote ||= isWrite(method) && reply.status < 300;
			scriptedReset ||= resetAfterWrite;
			this.#count(reply.status);
			responses.push({
				id,
				status: reply.status,
				headers: {...(reply.body === undefined ? {} : {'content-type': 'application/json'}), ...reply.headers},
				...(reply.body === undefined ? {} : {body: withInnerError(reply.body, clientRequestId)}),
			});
		}

		// Graph answers batch items in any order: callers must match by id.
		for (let index = responses.length - 1; index > 0; index--) {
			const other = Math.floor(this.#random() * (index + 1));
			[responses[index], responses[other]] = [responses[other]!, responses[index]!];
		}

		const resetAfterWrite = scriptedReset || (wrote && this.#chance(this.#options.faults?.resetAfterWriteRate));
		// Microsoft's pages disagree: 200 whenever the batch parses (batching), or 424 when items were throttled (throttling).
		const throttledStatus = this.#options.throttle?.batchStatusWhenThrottled ?? 200;
		const status = responses.some(response => response.status === 429) ? throttledStatus : 200;
		const reply: Reply = {status, body: {responses}};
		this.#itemizedBatches.add(reply);
		return {reply, resetAfterWrite};
	}

	#batchItem(
		method: string,
		path: string,
		search: string,
		body: string,
		contentType: string | undefined,
		version: string,
	): {reply: Reply; resetAfterWrite: boolean} {
		const scripted = this.#takeScript(method, path);
		if (scripted?.reply) {
			this.stats.operations++;
			return {reply: scripted.reply, resetAfterWrite: false};
		}

		const reply = this.#spendOperation() ?? this.#serverFault() ?? this.#warned(this.#operation(method, path, search, body, contentType, version));
		return {reply, resetAfterWrite: scripted?.resetAfterWrite ?? false};
	}

	/** The first script that matches; with `batchOnly`, only one whose `path` names the request (not a catch-all). */
	#takeScript(method: string, path: string, batchOnly = false): ScriptedFault | undefined {
		const index = this.#scripts.findIndex(
			fault =>
				(fault.method === undefined || fault.method === method) &&
				(fault.path === undefined ? !batchOnly : fault.path.test(path)),
		);
		if (index === -1) {
			return undefined;
		}

		const fault = this.#scripts[index]!;
		fault.times = (fault.times ?? 1) - 1;
		if (fault.times <= 0) {
			this.#scripts.splice(index, 1);
		}

		return fault;
	}

	/** An accepted operation's reply, with the early warning when the throttle model gives one. */
	#warned(reply: Reply): Reply {
		const warning = reply.status < 400 ? this.#throttle.warning() : undefined;
		return warning ? {...reply, headers: {...reply.headers, ...warning}} : reply;
	}

	/** Counts one operation against the rate budget; a 429 reply when it is spent or the penalty window is open. */
	#spendOperation(): Reply | undefined {
		this.stats.operations++;
		const refusal = this.#throttle.spend();
		return refusal && throttledReply(refusal);
	}

	#scheduleOutage(): void {
		const {outageAfterMs, outageMs} = this.#options.faults ?? {};
		if (this.#outageScheduled || !outageMs) {
			return;
		}

		this.#outageScheduled = true;
		setTimeout(() => {
			void this.outage(outageMs);
		}, outageAfterMs ?? 0).unref();
	}

	#serverFault(): Reply | undefined {
		if (!this.#chance(this.#options.faults?.serverErrorRate)) {
			return undefined;
		}

		const status = [500, 502, 503, 504][Math.floor(this.#random() * 4)]!;
		return graphError(status, status === 503 ? 'ServiceUnavailable' : 'UnknownError', `Simulated ${status}.`);
	}

	async #delay(): Promise<void> {
		const {latencyMs = 0, jitterMs = 0} = this.#options.faults ?? {};
		const delay = latencyMs + (this.#random() * 2 - 1) * jitterMs;
		if (delay > 0) {
			await new Promise(resolve => setTimeout(resolve, delay));
		}
	}

	#chance(rate: number | undefined): boolean {
		return rate !== undefined && rate > 0 && this.#random() < rate;
	}

	/** The simulator's own routes' replies: not Graph's, not counted. */
	readonly #uncounted = new WeakSet<Reply>();
	/** The envelopes of `$batch` requests answered item by item (their items are the operations counted). */
	readonly #itemizedBatches = new WeakSet<Reply>();

	#count(status: number): void {
		countAnswer(this.stats, status, Date.now());
	}

	#route(name: RouteName): void {
		this.stats.byRoute[name] = (this.stats.byRoute[name] ?? 0) + 1;
	}

	#generateId(): string {
		const hex = Array.from({length: 32}, () => Math.floor(this.#random() * 16).toString(16)).join('');
		return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20)}`;
	}
}

function throttledReply(headers: Record<string, string>): Reply {
	return {...graphError(429, 'TooManyRequests', 'Too many requests. Please retry after the time in the Retry-After header.'), headers};
}

function withInnerError(body: unknown, clientRequestId: string, requestId = randomUUID()): unknown {
	const error = (body as {error?: Record<string, unknown>})?.error;
	if (!error) {
		return body;
	}

	return {error: {...error, innerError: {date: new Date().toISOString(), 'request-id': requestId, 'client-request-id': clientRequestId}}};
}

function send(response: ServerResponse, reply: Reply, clientRequestId: string): void {
	const requestId = randomUUID();
	const headers: Record<string, string> = {'request-id': requestId, 'client-request-id': clientRequestId, ...reply.headers};
	if (reply.body === undefined) {
		response.writeHead(reply.status, headers).end();
		return;
	}

	const body = JSON.stringify(withInnerError(reply.body, clientRequestId, requestId));
	response.writeHead(reply.status, {...headers, 'content-type': 'application/json'}).end(body);
}

async function readBody(request: IncomingMessage): Promise<string> {
	const chunks: Buffer[] = [];
	for await (const chunk of request) {
		chunks.push(chunk as Buffer);
	}

	return Buffer.concat(chunks).toString('utf8');
}

function headerValue(value: string | string[] | undefined): string | undefined {
	return Array.isArray(value) ? value[0] : value;
}

function isWrite(method: string): boolean {
	return method === 'POST' || method === 'DELETE' || method === 'PATCH' || method === 'PUT';
}

/** The operations a request carries: its items for a `$batch` whose body says (at least one), else one. */
function operationsIn(request: IncomingMessage, body: string): number {
	if (request.method !== 'POST' || !/\/\$batch(?:\?|$)/.test(request.url ?? '')) {
		return 1;
	}

	try {
		const requests = (JSON.parse(body) as {requests?: unknown}).requests;
		return Array.isArray(requests) && requests.length > 0 ? requests.length : 1;
	} catch {
		return 1;
	}
}
