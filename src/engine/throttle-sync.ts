// Keeps this process's throttle gate and pace in step with every other instance working the same queue, through a
// `ThrottleStore`: a 429 one instance sees shuts every instance's gate, the pace it finds is the app's, divided among
// the instances working, and an instance that joins starts from that pace instead of probing from scratch.

import {randomUUID} from 'node:crypto';
import type {Clock} from './clock.js';
import type {EngineEvents} from './engine-events.js';
import {scalePace} from './pace.js';
import {probeLeaseMs, probeWaitUntil, type ThrottleNews, type ThrottleSnapshot, type ThrottleStore} from './shared-throttle.js';
import type {ThrottleGate} from './throttle-gate.js';
import type {ThroughputControl} from './throughput-control.js';
import {initialSyncState, isHolding, mayExchange, nextSyncState, type SyncInput, type SyncPhase, type SyncState} from './sync-phase.js';

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
	/** The phase and the store's health (sync-phase.ts): everything else here is a timer, I/O or news to send. */
	#state: SyncState = initialSyncState;
	#instances = 1;
	/** The heartbeat, while the instance has work. */
	#timer: NodeJS.Timeout | undefined;
	/** Ends a hold (`joining`, `waiting-for-prober`) at its `holdUntil`. */
	#holdTimer: NodeJS.Timeout | undefined;
	#joinWaiters: Array<() => void> = [];
	#running: Promise<void> | undefined;
	#again = false;
	#news: ThrottleNews | undefined;
	#warned = false;
	/** An exchange just before the gate reopens, so that no instance reopens on a pace older than the burst. */
	#beforeReopen: NodeJS.Timeout | undefined;
	#beforeReopenAt = 0;

	constructor(options: ThrottleSyncOptions) {
		this.#options = {intervalMs: 1000, retryAfterFailureMs: 30_000, ...options};
	}

	/** Instances working now, as last read (this one included). */
	get instances(): number {
		return this.#instances;
	}

	/** Whether the last attempt to reach the store failed (the instance paces alone meanwhile). */
	get degraded(): boolean {
		return this.#state.store.kind === 'failed';
	}

	/** The phase, for tests and logs. */
	get phase(): SyncPhase {
		return this.#state.phase;
	}

	/**
	 * Whether this instance may send: not while its first exchange is pending (at most `joinTimeoutMs`) or another
	 * instance probes for a pace nobody knows yet (at most the probe lease). Its first requests wait, so that it starts
	 * knowing how many instances work and the pace they found rather than adding a burst of its own to theirs.
	 */
	get joined(): boolean {
		return !isHolding(this.#state.phase);
	}

	async whenJoined(): Promise<void> {
		if (this.joined) {
			return;
		}

		return new Promise(resolve => {
			this.#joinWaiters.push(resolve);
		});
	}

	/** Starts (or stops) the heartbeat: only an instance with work reads the state and counts as working. */
	setBusy(busy: boolean): void {
		const now = this.#options.clock.now();
		if (busy && !this.#timer) {
			this.#step({type: 'work', at: now});
			this.#timer = setInterval(() => {
				this.#exchange();
			}, this.#options.intervalMs);
			this.#timer.unref();
			this.#exchange();
		} else if (!busy && this.#timer) {
			clearInterval(this.#timer);
			clearTimeout(this.#beforeReopen);
			this.#timer = undefined;
			this.#step({type: 'no-work', at: now});
			this.#exchange();
		}
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

	/** Moves the state on, and does what the new one asks of the first requests. */
	#step(input: SyncInput): void {
		this.#state = nextSyncState(this.#state, input);
		const {phase} = this.#state;
		clearTimeout(this.#holdTimer);
		if (isHolding(phase)) {
			this.#holdTimer = setTimeout(
				() => {
					this.#step({type: 'hold-ended', at: this.#options.clock.now()});
				},
				Math.max(0, phase.holdUntil - this.#options.clock.now()),
			);
			this.#holdTimer.unref();
		} else if (this.#joinWaiters.length > 0) {
			const waiters = this.#joinWaiters;
			this.#joinWaiters = [];
			for (const resolve of waiters) {
				resolve();
			}
		}
	}

	#exchange(): void {
		if (this.#running) {
			this.#again = true;
			return;
		}

		const {clock, store} = this.#options;
		const now = clock.now();
		if (!mayExchange(this.#state, now)) {
			return;
		}

		const news = this.#news;
		this.#news = undefined;
		const leaving = this.#state.phase.kind === 'leaving';
		this.#step({type: 'exchange-sent', at: now});
		this.#running = store
			.exchange(this.instanceId, news, now, leaving)
			.then(
				snapshot => {
					if (snapshot.written === false && news) {
						// Not written: keep it (merged with anything newer) for the next exchange, which follows at once.
						this.#news = this.#news ? latestNews(news, this.#news) : news;
						this.#again = true;
					}

					this.#apply(snapshot);
					// The lease's end is in the prober's clock: another machine's may be off, so never wait past a lease's length.
					const readAt = clock.now();
					const probeWaitMs = Math.min(probeLeaseMs, Math.max(0, probeWaitUntil(snapshot.record, this.instanceId, readAt) - readAt));
					this.#step({type: 'exchanged', at: readAt, probeWaitMs});
				},
				(error: unknown) => {
					// Carry on alone: the gate and pace stay this process's own; nothing is failed or dead-lettered for it.
					this.#step({type: 'store-failed', at: clock.now(), retryAfterMs: this.#options.retryAfterFailureMs});
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
				events?.emit({type: 'pace-changed', at, pace, source: 'shared-record'});
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

/** How long before the gate reopens the last exchange of a wait happens: about one storage round trip. */
const beforeReopenMs = 150;

function firstLine(error: unknown): string {
	const value = error as {statusCode?: number; code?: string; message?: string};
	const detail = [value?.statusCode, value?.code].filter(Boolean).join(' ');
	const message = String(value?.message ?? error).split('\n')[0]!.slice(0, 200);
	return detail ? `${detail}: ${message}` : message;
}
