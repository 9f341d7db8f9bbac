// Keeps this process's throttle gate and pace in step with every other instance working the same queue, through a
// `ThrottleStore`: a 429 one instance sees shuts every instance's gate, the pace it finds is the app's, divided among
// the instances working, and an instance that joins starts from that pace instead of probing from scratch.

import {randomUUID} from 'node:crypto';
import type {Clock} from './clock.js';
import type {EngineEvents} from './engine-events.js';
import {probeLeaseMs, probeWaitUntil, scalePace, type ThrottleNews, type ThrottleSnapshot, type ThrottleStore} from './shared-throttle.js';
import type {ThrottleGate} from './throttle-gate.js';
import type {ThroughputControl} from './throughput-control.js';

export interface ThrottleSyncOptions {
	store: ThrottleStore;
	gate: ThrottleGate;
	control: ThroughputControl;
	clock: Clock;
	/** How often a busy instance reads the shared state. Defaults to 1 s. */
	intervalMs?: number;
	/** After the store fails, how long to carry on alone before trying it again. Defaults to 30 s. */
	retryAfterFailureMs?: number;
	/** Told once, when the store first cannot be reached. */
	onWarning?: (message: string) => void;
	/** Where what the shared record changed here is told. */
	events?: EngineEvents;
}

export class ThrottleSync {
	readonly instanceId = randomUUID();
	readonly #options: Required<Omit<ThrottleSyncOptions, 'onWarning' | 'events'>> & Pick<ThrottleSyncOptions, 'onWarning' | 'events'>;
	#instances = 1;
	#timer: NodeJS.Timeout | undefined;
	#running: Promise<void> | undefined;
	#news: ThrottleNews | undefined;
	#again = false;
	#failedUntil = 0;
	#warned = false;
	/** The next exchange tells the others this instance has no work left. */
	#leaving = false;
	/** An exchange just before the gate reopens, so that no instance reopens on a pace older than the burst. */
	#beforeReopen: NodeJS.Timeout | undefined;
	#beforeReopenAt = 0;
	/**
	 * Settles when the first exchange has read the state (and no other instance's probe is to be waited for) or failed,
	 * or after `joinTimeoutMs` without an answer; undefined before it starts.
	 */
	#joined: Promise<void> | undefined;
	/** Settles `#joined`; defined exactly while the first requests wait. */
	#join: (() => void) | undefined;
	#joinTimer: NodeJS.Timeout | undefined;
	#heldForProbe = false;

	constructor(options: ThrottleSyncOptions) {
		this.#options = {intervalMs: 1000, retryAfterFailureMs: 30_000, ...options};
	}

	/** Instances working now, as last read (this one included). */
	get instances(): number {
		return this.#instances;
	}

	/** Whether the last attempt to reach the store failed (the instance paces alone meanwhile). */
	get degraded(): boolean {
		return this.#failedUntil > 0;
	}

	/**
	 * Whether this instance may send: true once its first exchange has settled (or could not, within
	 * `joinTimeoutMs`), and while it has not started one. Its first requests wait for it, so that it starts knowing how
	 * many instances work and the pace they found, rather than adding a burst of its own to theirs. While another
	 * instance probes for a pace nobody knows yet, it waits for that instance's first throttle event or the probe
	 * lease's end (see `ProbeLease`).
	 */
	get joined(): boolean {
		return this.#join === undefined;
	}

	async whenJoined(): Promise<void> {
		return this.#joined;
	}

	/** Starts (or stops) the heartbeat: only an instance with work reads the state and counts as working. */
	setBusy(busy: boolean): void {
		if (busy && !this.#joined) {
			this.#joined = new Promise<void>(resolve => {
				this.#join = resolve;
			}).then(() => {
				this.#join = undefined;
				clearTimeout(this.#joinTimer);
			});
			this.#holdJoin(joinTimeoutMs);
		}

		if (busy && !this.#timer) {
			this.#timer = setInterval(() => {
				this.#exchange();
			}, this.#options.intervalMs);
			this.#timer.unref();
			this.#exchange();
		} else if (!busy && this.#timer) {
			clearInterval(this.#timer);
			clearTimeout(this.#beforeReopen);
			this.#timer = undefined;
			this.#leaving = true;
			this.#exchange();
		}
	}

	/** The first requests wait at most `ms` more. */
	#holdJoin(ms: number): void {
		clearTimeout(this.#joinTimer);
		this.#joinTimer = setTimeout(() => this.#join?.(), ms);
		this.#joinTimer.unref();
	}

	/** Tells every instance about a throttle event this one saw, at once. */
	publish(event: ThrottleNews): void {
		this.#news = this.#news ? latestNews(this.#news, event) : event;
		this.#exchange();
	}

	/** Resolves when no exchange is running (tests). */
	async settled(): Promise<void> {
		while (this.#running) {
			// eslint-disable-next-line no-await-in-loop
			await this.#running;
		}
	}

	#exchange(): void {
		if (this.#running) {
			this.#again = true;
			return;
		}

		const now = this.#options.clock.now();
		if (now < this.#failedUntil) {
			return;
		}

		const news = this.#news;
		this.#news = undefined;
		const leaving = this.#leaving && !this.#timer;
		this.#leaving = false;
		let probeWait = 0;
		this.#running = this.#options.store
			.exchange(this.instanceId, news, now, leaving)
			.then(
				snapshot => {
					this.#failedUntil = 0;
					if (snapshot.written === false && news) {
						// Not written: keep it (merged with anything newer) for the next exchange, which follows at once.
						this.#news = this.#news ? latestNews(news, this.#news) : news;
						this.#again = true;
					}

					this.#apply(snapshot);
					// The lease's end is in the prober's clock: another machine's may be off, so never wait past a lease's length.
					const readAt = this.#options.clock.now();
					probeWait = Math.min(probeLeaseMs, Math.max(0, probeWaitUntil(snapshot.record, this.instanceId, readAt) - readAt));
				},
				(error: unknown) => {
					// Carry on alone: the gate and pace stay this process's own; nothing is failed or dead-lettered for it.
					this.#failedUntil = this.#options.clock.now() + this.#options.retryAfterFailureMs;
					if (news && !this.#news) {
						this.#news = news;
					}

					if (!this.#warned) {
						this.#warned = true;
						this.#options.onWarning?.(
							`sod-sync: the shared throttle state cannot be reached (${firstLine(error)}); this instance paces on its own until it can. No pair is affected.`,
						);
					}
				},
			)
			.finally(() => {
				this.#running = undefined;
				if (probeWait <= 0) {
					this.#join?.();
				} else if (this.#join && !this.#heldForProbe) {
					// Later reads may end the wait early (the prober found the pace), never lengthen it.
					this.#heldForProbe = true;
					this.#holdJoin(probeWait);
				}

				if (this.#again) {
					this.#again = false;
					this.#exchange();
				}
			});
	}

	/**
	 * The instances that saw a burst publish their estimates of it within a round trip of each other; the others learn
	 * them at their next read, up to a second later. Reading once more just before the gate reopens means every
	 * instance starts again from the averaged pace, and none of them unpaced.
	 */
	#exchangeBeforeReopen(reopenAt: number): void {
		const at = reopenAt - beforeReopenMs;
		const wait = at - this.#options.clock.now();
		if (!this.#timer || wait <= 0 || at === this.#beforeReopenAt) {
			return;
		}

		clearTimeout(this.#beforeReopen);
		this.#beforeReopenAt = at;
		this.#beforeReopen = setTimeout(() => {
			this.#exchange();
		}, wait);
		this.#beforeReopen.unref();
	}

	#apply(snapshot: ThrottleSnapshot): void {
		const {record, instances} = snapshot;
		const {control, gate, clock, events} = this.#options;
		const at = clock.now();
		if (instances !== this.#instances) {
			events?.emit({type: 'instances-changed', at, instances, previous: this.#instances});
		}

		this.#instances = instances;
		control.setInstances(instances);
		const reopenAt = gate.reopenAt;
		gate.holdUntil(record.reopenAt);
		if (gate.reopenAt !== reopenAt) {
			events?.emit({type: 'gate-held', at, reopenAt: gate.reopenAt});
		}

		this.#exchangeBeforeReopen(record.reopenAt);
		if (record.pace) {
			const before = control.pace;
			control.adopt(scalePace(record.pace, 1 / instances));
			const pace = control.pace!;
			if (!before || before.setAt !== pace.setAt || Math.abs(before.rate - pace.rate) > 1e-9 * pace.rate) {
				events?.emit({type: 'pace-changed', at, pace, source: 'another-instance'});
			}
		}
	}
}

/** Two pieces of news not yet written, as one: the later event, the longer wait, and the later pace when it has none. */
function latestNews(earlier: ThrottleNews, later: ThrottleNews): ThrottleNews {
	return {
		reopenAt: Math.max(later.reopenAt, earlier.reopenAt),
		sentAt: later.sentAt,
		closedAt: later.closedAt,
		pace: later.pace ?? earlier.pace,
	};
}

/** The first requests wait at most this long for the first exchange: the storage account may be slow or gone. */
const joinTimeoutMs = 1000;

/** How long before the gate reopens the last exchange of a wait happens: about one storage round trip. */
const beforeReopenMs = 150;

function firstLine(error: unknown): string {
	const value = error as {statusCode?: number; code?: string; message?: string};
	const detail = [value?.statusCode, value?.code].filter(Boolean).join(' ');
	const message = String(value?.message ?? error).split('\n')[0]!.slice(0, 200);
	return detail ? `${detail}: ${message}` : message;
}
