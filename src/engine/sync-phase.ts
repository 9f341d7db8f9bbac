// An instance's place among the instances sharing the throttle state, as one value, and the pure function that moves
// it on. ThrottleSync (throttle-sync.ts) feeds it what happened (work came or ran out, an exchange with the store
// went out, came back or failed, a hold ran out) and does what the new state asks: hold or release the first
// requests, tell the others it left, leave the store alone while it is failing. Timers and I/O stay in ThrottleSync.

/** Where the instance is among the others. */
export type SyncPhase =
	/** Never had work: nothing read, nothing held. */
	| {readonly kind: 'idle'}
	/** Has work, its first read of the shared state pending: its first requests wait, until `holdUntil` at most. */
	| {readonly kind: 'joining'; readonly holdUntil: number}
	/**
	 * Has work and has read the state: another instance is probing for a pace nobody knows yet, and the first requests
	 * wait for its first throttle event, until `holdUntil` at most (the probe lease's end, never later).
	 */
	| {readonly kind: 'waiting-for-prober'; readonly holdUntil: number}
	/** Has work and sends. */
	| {readonly kind: 'joined'}
	/** Out of work: the next exchange tells the others it left, so that they take its share at once. */
	| {readonly kind: 'leaving'}
	/** Out of work, the others told. Work that comes back is sent at once: the instance knows the state already. */
	| {readonly kind: 'left'};

/** Whether the store answered the last exchange; after a failure, the instance paces alone until `retryAt`. */
export type StoreHealth = {readonly kind: 'healthy'} | {readonly kind: 'failed'; readonly retryAt: number};

export interface SyncState {
	readonly phase: SyncPhase;
	readonly store: StoreHealth;
}

/** What happened, at `at` (the instance's clock, epoch ms). */
export type SyncInput =
	| {readonly type: 'work'; readonly at: number}
	| {readonly type: 'no-work'; readonly at: number}
	/** An exchange went out (telling the others it left, when the phase was `leaving`). */
	| {readonly type: 'exchange-sent'; readonly at: number}
	/** An exchange came back; `probeWaitMs`: how long another instance's probe still asks a joining one to wait. */
	| {readonly type: 'exchanged'; readonly at: number; readonly probeWaitMs: number}
	| {readonly type: 'store-failed'; readonly at: number; readonly retryAfterMs: number}
	/** The timer set for a hold's end fired. */
	| {readonly type: 'hold-ended'; readonly at: number};

export const initialSyncState: SyncState = {phase: {kind: 'idle'}, store: {kind: 'healthy'}};

/** The first requests wait at most this long for the first exchange: the storage account may be slow or gone. */
export const joinTimeoutMs = 1000;

/** Whether the first requests wait (and until when). */
export function isHolding(phase: SyncPhase): phase is Extract<SyncPhase, {holdUntil: number}> {
	return phase.kind === 'joining' || phase.kind === 'waiting-for-prober';
}

/** Whether an exchange may go out at `at`: not while a failed store is left alone. */
export function mayExchange(state: SyncState, at: number): boolean {
	return state.store.kind === 'healthy' || at >= state.store.retryAt;
}

/**
 * The state after `input`.
 *
 * @example
 * nextSyncState(initialSyncState, {type: 'work', at: 0}) // {phase: {kind: 'joining', holdUntil: 1000}, store: healthy}
 */
export function nextSyncState(state: SyncState, input: SyncInput): SyncState {
	const {phase} = state;
	switch (input.type) {
		case 'work': {
			if (phase.kind === 'idle') {
				// With the store known to be failing no read is coming: the instance starts alone at once.
				return withPhase(state, mayExchange(state, input.at) ? {kind: 'joining', holdUntil: input.at + joinTimeoutMs} : {kind: 'joined'});
			}

			return phase.kind === 'leaving' || phase.kind === 'left' ? withPhase(state, {kind: 'joined'}) : state;
		}

		case 'no-work': {
			return phase.kind === 'idle' || phase.kind === 'leaving' || phase.kind === 'left' ? state : withPhase(state, {kind: 'leaving'});
		}

		case 'exchange-sent': {
			return phase.kind === 'leaving' ? withPhase(state, {kind: 'left'}) : state;
		}

		case 'exchanged': {
			const healthy: SyncState = {phase, store: {kind: 'healthy'}};
			if (!isHolding(phase)) {
				return healthy;
			}

			if (input.probeWaitMs <= 0) {
				return withPhase(healthy, {kind: 'joined'});
			}

			// A later read may end the wait early (the prober found the pace), never lengthen it.
			const holdUntil = input.at + input.probeWaitMs;
			return withPhase(healthy, {kind: 'waiting-for-prober', holdUntil: phase.kind === 'waiting-for-prober' ? Math.min(phase.holdUntil, holdUntil) : holdUntil});
		}

		case 'store-failed': {
			const failed: SyncState = {phase, store: {kind: 'failed', retryAt: input.at + input.retryAfterMs}};
			// Carry on alone: nothing waits for a store that does not answer.
			return isHolding(phase) ? withPhase(failed, {kind: 'joined'}) : failed;
		}

		case 'hold-ended': {
			return isHolding(phase) && input.at >= phase.holdUntil ? withPhase(state, {kind: 'joined'}) : state;
		}
	}
}

function withPhase(state: SyncState, phase: SyncPhase): SyncState {
	return {phase, store: state.store};
}
