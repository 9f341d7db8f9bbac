// The phases of an instance among those sharing the throttle state: every transition, without timers or a store.

import {describe, expect, it} from 'vitest';
import {initialSyncState, isHolding, joinTimeoutMs, mayExchange, nextSyncState, type SyncInput, type SyncPhase, type SyncState} from '../../src/engine/sync-phase.js';

const healthy = {kind: 'healthy'} as const;
const state = (phase: SyncPhase, store: SyncState['store'] = healthy): SyncState => ({phase, store});
const joining = (holdUntil: number): SyncPhase => ({kind: 'joining', holdUntil});
const waiting = (holdUntil: number): SyncPhase => ({kind: 'waiting-for-prober', holdUntil});
const joined: SyncPhase = {kind: 'joined'};
const leaving: SyncPhase = {kind: 'leaving'};
const left: SyncPhase = {kind: 'left'};
const idle: SyncPhase = {kind: 'idle'};
const failed = (retryAt: number) => ({kind: 'failed', retryAt}) as const;

describe('nextSyncState', () => {
	const cases: Array<[string, SyncState, SyncInput, SyncState]> = [
		// Work comes.
		['the first work holds the first requests for the first read, a second at most', state(idle), {type: 'work', at: 100}, state(joining(100 + joinTimeoutMs))],
		['work with the store known to be failing starts at once, alone', state(idle, failed(5000)), {type: 'work', at: 100}, state(joined, failed(5000))],
		['work after the failure wait is over holds for a read again', state(idle, failed(5000)), {type: 'work', at: 5000}, state(joining(5000 + joinTimeoutMs), failed(5000))],
		['work back before the leave was told: sending at once', state(leaving), {type: 'work', at: 100}, state(joined)],
		['work back after leaving: sending at once (the state is known)', state(left), {type: 'work', at: 100}, state(joined)],
		['more work while joining changes nothing', state(joining(900)), {type: 'work', at: 100}, state(joining(900))],
		// Work runs out.
		['out of work while joined: leaving', state(joined), {type: 'no-work', at: 100}, state(leaving)],
		['out of work while joining: leaving, the hold released', state(joining(900)), {type: 'no-work', at: 100}, state(leaving)],
		['out of work while waiting for a prober: leaving', state(waiting(900)), {type: 'no-work', at: 100}, state(leaving)],
		['out of work when it never had any: still idle', state(idle), {type: 'no-work', at: 100}, state(idle)],
		// Exchanges.
		['an exchange sent while leaving tells the others: left', state(leaving), {type: 'exchange-sent', at: 100}, state(left)],
		['an exchange sent while joined changes nothing', state(joined), {type: 'exchange-sent', at: 100}, state(joined)],
		['the first read with nobody probing: joined', state(joining(900)), {type: 'exchanged', at: 300, probeWaitMs: 0}, state(joined)],
		['the first read while another probes: waiting for it', state(joining(900)), {type: 'exchanged', at: 300, probeWaitMs: 1200}, state(waiting(1500))],
		['a later read may shorten the wait for the prober', state(waiting(1500)), {type: 'exchanged', at: 1000, probeWaitMs: 200}, state(waiting(1200))],
		['a later read never lengthens it', state(waiting(1500)), {type: 'exchanged', at: 1000, probeWaitMs: 2000}, state(waiting(1500))],
		['a read showing the prober found the pace ends the wait', state(waiting(1500)), {type: 'exchanged', at: 1000, probeWaitMs: 0}, state(joined)],
		['a read after a failure makes the store healthy again', state(joined, failed(5000)), {type: 'exchanged', at: 5100, probeWaitMs: 0}, state(joined)],
		['a read while joined changes nothing else', state(joined), {type: 'exchanged', at: 5100, probeWaitMs: 800}, state(joined)],
		['a failed first read: joined, alone, the store left alone for the wait', state(joining(900)), {type: 'store-failed', at: 300, retryAfterMs: 30_000}, state(joined, failed(30_300))],
		['a failed read while waiting for a prober: joined, alone', state(waiting(1500)), {type: 'store-failed', at: 300, retryAfterMs: 30_000}, state(joined, failed(30_300))],
		['a failed read while leaving: still leaving (told at the next exchange)', state(left), {type: 'store-failed', at: 300, retryAfterMs: 30_000}, state(left, failed(30_300))],
		// Holds end.
		['a hold ends at its time', state(joining(900)), {type: 'hold-ended', at: 900}, state(joined)],
		['a timer that fires early ends nothing', state(joining(900)), {type: 'hold-ended', at: 899}, state(joining(900))],
		['the wait for a prober ends at its time', state(waiting(1500)), {type: 'hold-ended', at: 1600}, state(joined)],
		['a stale timer after joining changes nothing', state(joined), {type: 'hold-ended', at: 1600}, state(joined)],
	];

	it.each(cases)('%s', (_title, before, input, after) => {
		expect(nextSyncState(before, input)).toEqual(after);
	});

	it('starts idle, with the store healthy, holding nothing', () => {
		expect(initialSyncState).toEqual(state(idle));
		expect(isHolding(initialSyncState.phase)).toBe(false);
	});

	it('holds the first requests exactly while joining or waiting for a prober', () => {
		expect([idle, joining(1), waiting(1), joined, leaving, left].map(phase => isHolding(phase))).toEqual([false, true, true, false, false, false]);
	});

	it('leaves a failing store alone until its retry time, and only then', () => {
		expect(mayExchange(state(joined), 0)).toBe(true);
		expect(mayExchange(state(joined, failed(5000)), 4999)).toBe(false);
		expect(mayExchange(state(joined, failed(5000)), 5000)).toBe(true);
	});

	it('walks a whole life: joins behind a prober, sends, leaves, comes back', () => {
		const inputs: SyncInput[] = [
			{type: 'work', at: 0},
			{type: 'exchange-sent', at: 0},
			{type: 'exchanged', at: 40, probeWaitMs: 1500},
			{type: 'exchange-sent', at: 1000},
			{type: 'exchanged', at: 1040, probeWaitMs: 0},
			{type: 'no-work', at: 5000},
			{type: 'exchange-sent', at: 5000},
			{type: 'work', at: 9000},
		];
		const phases: string[] = [];
		inputs.reduce((current, input) => {
			const next = nextSyncState(current, input);
			phases.push(next.phase.kind);
			return next;
		}, initialSyncState);
		expect(phases).toEqual(['joining', 'joining', 'waiting-for-prober', 'waiting-for-prober', 'joined', 'leaving', 'left', 'joined']);
	});
});
