// The engine's events as log lines: what an operator reading the Function's log (or `sod-sync run --verbose`) sees of
// throttling and pacing. The wording lives here; the engine only raises events.

import type {EngineEvent} from '../engine/engine-events.js';

/** The events worth a log line (`request` is counted, not logged: subscribing to it would build one per request). */
export const loggedEngineEvents: ReadonlyArray<EngineEvent['type']> = ['throttled', 'gate-held', 'pace-changed', 'limit-warning', 'instances-changed'];

const rate = (operationsPerSecond: number) => `${operationsPerSecond >= 10 ? Math.round(operationsPerSecond) : operationsPerSecond.toFixed(1)} operations/s`;

/** One line for the events worth a line; undefined for the others (`request`: counted, not logged). */
export function describeEngineEvent(event: EngineEvent): string | undefined {
	switch (event.type) {
		case 'throttled': {
			const wait = `${((event.reopenAt - event.at) / 1000).toFixed(1)} s`;
			return event.cause === 'unreachable'
				? `sod-sync: Graph cannot be reached; every request waits ${wait}, backing off (no pair is charged for it)`
				: `sod-sync: Graph throttled (429${event.retryAfterMs === undefined ? ', no Retry-After' : `, Retry-After ${(event.retryAfterMs / 1000).toFixed(1)} s`}); every request waits ${wait}`;
		}

		case 'gate-held': {
			return `sod-sync: another instance was throttled; this one waits ${((event.reopenAt - event.at) / 1000).toFixed(1)} s too`;
		}

		case 'pace-changed': {
			const {pace} = event;
			const ceiling = Number.isFinite(pace.ceiling) ? `Graph's ceiling as found ${rate(pace.ceiling)}` : 'no ceiling fitted yet';
			return `sod-sync: pacing at ${rate(pace.rate)} from now on (${sourceWords[event.source]}; this instance's share; ${ceiling})`;
		}

		case 'limit-warning': {
			// A paced warning is told by its pace-changed line; this one says what happened before any pace.
			return event.eased === 'concurrency'
				? `sod-sync: Graph says ${Math.round(event.used * 100)}% of the app's limit is spent; one request at a time until it throttles and a pace is found`
				: undefined;
		}

		case 'instances-changed': {
			return `sod-sync: ${event.instances} instance${event.instances === 1 ? '' : 's'} share Graph's budget (was ${event.previous})`;
		}

		case 'request': {
			return undefined;
		}
	}
}

const sourceWords = {
	'this-instance': 'found here',
	'shared-record': "from the instances' shared record",
	'limit-warning': "eased before a 429: Graph says 80% of the app's limit is spent",
} as const;
