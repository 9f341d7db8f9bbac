// What the engine says happened, for the edges to listen to (logging, metrics, the CLI's report), the way cockatiel's
// policies raise onRetry: nothing deep in the engine writes to the console or to a meter.

import type {Pace} from './shared-throttle.js';

/**
 * What set a pace: a throttle event here, the instances' shared record (another instance's pace, or this one's own read
 * back after it was idle: the record restarts the climb of an idle app), or Graph's early warning.
 */
export type EventSource = 'this-instance' | 'shared-record' | 'limit-warning';

export type EngineEvent =
	/**
	 * One request to Graph came back: how many operations it carried, and what became of them. `statuses` counts the
	 * operations by HTTP status (`$batch` items one by one; `none` when no answer came: a dropped connection, a timeout).
	 */
	| {type: 'request'; at: number; operations: number; accepted: number; throttled: number; failed: number; statuses: Readonly<Record<string, number>>}
	/**
	 * A throttle event: the first 429 of a burst (`retryAfterMs` undefined when Graph sent none), or Graph unreachable.
	 * The gate is shut until `reopenAt` and reopens then by itself (no event).
	 */
	| {type: 'throttled'; at: number; cause: 'throttled' | 'unreachable'; retryAfterMs: number | undefined; reopenAt: number}
	/** Another instance's throttle event shut this instance's gate until `reopenAt`. */
	| {type: 'gate-held'; at: number; reopenAt: number}
	/** The pace this instance sends at was set (its share of the app's pace). */
	| {type: 'pace-changed'; at: number; pace: Pace; source: EventSource}
	/**
	 * Graph's early warning (`used` of the app's limit spent) eased this instance: its pace, or (unpaced) its concurrency.
	 */
	| {type: 'limit-warning'; at: number; used: number; eased: 'pace' | 'concurrency'}
	/** The number of instances working one queue changed (this one included). */
	| {type: 'instances-changed'; at: number; instances: number; previous: number};

export type EngineEventListener = (event: EngineEvent) => void;

/**
 * @example
 * const stop = engine.events.on(event => { if (event.type === 'throttled') log(`429: gate shut until ${event.reopenAt}`); });
 * stop(); // unsubscribes
 */
export class EngineEvents {
	readonly #listeners = new Map<EngineEventListener, ReadonlySet<EngineEvent['type']> | undefined>();

	/** Subscribes to every event, or to those of `types`; returns the function that unsubscribes. */
	on(listener: EngineEventListener, types?: ReadonlyArray<EngineEvent['type']>): () => void {
		this.#listeners.set(listener, types && new Set(types));
		return () => this.#listeners.delete(listener);
	}

	/** Tells every listener. A listener that throws is a bug at the edge: it never stops the engine or the others. */
	emit(event: EngineEvent): void {
		for (const [listener, types] of this.#listeners) {
			if (types && !types.has(event.type)) {
				continue;
			}

			try {
				listener(event);
			} catch {
				// Deliberately ignored: see above.
			}
		}
	}

	/** Whether anyone listens to `type`: the engine skips building events nobody reads (`request`, on every request). */
	listens(type: EngineEvent['type']): boolean {
		for (const types of this.#listeners.values()) {
			if (!types || types.has(type)) {
				return true;
			}
		}

		return false;
	}
}
