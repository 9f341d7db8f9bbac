// Adaptive concurrency and pacing: discovers how fast Graph will take work instead of being told. A thin shell over
// the ideas it combines, each kept apart:
// - Concurrency (HTTP requests in flight) starts at half the maximum, grows by one per window of successes (additive)
//   and halves on each throttle event (multiplicative), never above the maximum nor below one. With several instances
//   working, each starts at its share of that and grows that much slower, so that together they ramp up as one client
//   does: every request in flight when the bucket first runs dry is refused.
// - The pace (operations per second, off until the first throttle event): how it is chosen after a 429 and how it
//   grows is pace.ts. This class gathers the evidence for it: operations accepted, and their history bin by bin for
//   `fittedRate` (since the pace in force was set, or since this instance's share last changed), the bucket size the
//   first throttle event showed, and the time the process held no work (the climb's clock runs only while it holds
//   some: RFC 7661's rule for an idle TCP window).
// - A client-side token bucket at the pace's rate spaces the requests (`reserve`).
// - With several instances the pace is the app's (`ThrottleSync` shares it): this instance paces at its share.

import {systemClock, type Clock} from './clock.js';
import {easedPace, firstPace, minimumRate, pacedPace, paceAt, scalePace, type Pace, type ThrottleEvidence} from './pace.js';

export {paceAt, paceDecrease, paceGrowth, probeGrowth, refillSpend} from './pace.js';

export interface ThroughputControlOptions {
	/** The ceiling on requests in flight (`GRAPH_MAX_CONCURRENCY`). */
	maxConcurrency: number;
	/** Defaults to half the maximum, at least 1. */
	initialConcurrency?: number;
	clock?: Clock;
}

/** Accepted operations below which a throttle event says nothing about the sustained rate. */
const minimumEvidence = 20;
/** The accepted-operations history that the ceiling is fitted to: bins of this width... */
const historyBinMs = 100;
/** An early warning is acted on from this share of the limit spent (Graph sends it from 0.8). */
export const limitWarningFrom = 0.8;
/** Early warnings come on every answer while they last: the pace eases at most once per this long. Defaults to 1 s. */
const limitWarningSpacingMs = 1000;
/** Unpaced, early warnings drop the concurrency at most once per this long: about a round trip. Defaults to 100 ms. */
const unpacedWarningSpacingMs = 100;
/** ...and at most this many of them (the last minute). */
const historyBins = 600;
/** The fit ignores stretches shorter than this: a bucket's worth spread over a few bins says nothing of the rate. */
const minimumFitMs = 500;

/**
 * The refill rate of the token bucket that explains a 429 at the end of `history`: the smallest rate at which a bucket
 * of `bucket` operations, full at every point where the history leaves it full and holding what it refilled during the
 * `waitBeforeMs` that preceded the history, is empty after the operations accepted in `history` (bins of `binMs`,
 * oldest first, the last one ending at `elapsedMs`). For a bucket level L, L(end) = min(min(B, r W) + r T - C(0, T),
 * min over s of B + r (T - s) - C(s, T)); solving L(end) = 0 for r gives the largest of the per-term solutions.
 *
 * @example
 * // Under the rate for 4 s (the bucket stays full), then 600/s for 2 s: the 400-operation bucket ran out at 400/s.
 * fittedRate([...Array(40).fill(30), ...Array(20).fill(60)], 100, 6000, 2000, 400) // 400
 */
export function fittedRate(history: readonly number[], binMs: number, elapsedMs: number, waitBeforeMs: number, bucket: number): number {
	const total = history.reduce((sum, accepted) => sum + accepted, 0);
	let rate = total / ((elapsedMs + waitBeforeMs) / 1000);
	let suffix = 0;
	for (let bin = history.length - 1; bin >= 0; bin--) {
		suffix += history[bin]!;
		const span = elapsedMs - bin * binMs;
		if (span >= minimumFitMs) {
			rate = Math.max(rate, (suffix - bucket) / (span / 1000));
		}
	}

	return rate;
}

export class ThroughputControl {
	readonly #maximum: number;
	readonly #initial: number;
	readonly #clock: Clock;
	#concurrency: number;
	/** Instances working, this one included (`ThrottleSync` tells). */
	#instances = 1;
	/** This instance's pace; undefined until the first throttle event with evidence (or a shared pace) sets one. */
	#pace: Pace | undefined;
	#tokens = 0;
	#tokensAt = 0;
	#accepted = 0;
	#intervalStart: number;
	/** How long the gate was shut just before the interval started (the bucket refilled meanwhile). */
	#waitBeforeMs = 0;
	/** Operations accepted per `historyBinMs` since `#historyStart`, for `fittedRate`. */
	#history: number[] = [];
	#historyStart: number;
	/** The token bucket's size as this instance's first throttle event showed it; undefined before. */
	#bucket: number | undefined;
	#throttleEvents = 0;
	/** No request sent yet: the first interval starts with the first request, not with the process. */
	#unstarted = true;
	/** Time spent holding no work since the pace was set: the climb does not count it. */
	#idleMs = 0;
	/** When the process last ran out of work; undefined while it holds some. */
	#idleSince: number | undefined;
	/** When an early warning last eased this instance (they come on every answer above 80%: see the spacings above). */
	#easedAt = Number.NEGATIVE_INFINITY;
	/** The pace in force when early warnings began easing it, until a pace set since replaces it (see `adopt`). */
	#easedFrom: Pace | undefined;

	constructor(options: ThroughputControlOptions) {
		if (!Number.isInteger(options.maxConcurrency) || options.maxConcurrency < 1) {
			throw new TypeError(`Expected maxConcurrency to be a whole number from 1, got ${options.maxConcurrency}`);
		}

		this.#maximum = options.maxConcurrency;
		this.#clock = options.clock ?? systemClock;
		this.#initial = Math.min(this.#maximum, Math.max(1, options.initialConcurrency ?? Math.ceil(this.#maximum / 2)));
		this.#concurrency = this.#initial;
		this.#intervalStart = this.#clock.now();
		this.#historyStart = this.#intervalStart;
	}

	/** Requests allowed in flight now. */
	get concurrency(): number {
		return Math.max(1, Math.floor(this.#concurrency));
	}

	/** Operations per second allowed now; Infinity until the first throttle event. */
	get rate(): number {
		if (!this.#pace) {
			return Number.POSITIVE_INFINITY;
		}

		const now = this.#clock.now();
		return Math.max(minimumRate, paceAt(this.#pace, now - this.#idleMs - this.#idleSpell(now)));
	}

	/** How long the process has been out of work since the pace was set (0 while it holds some). */
	#idleSpell(now: number): number {
		return this.#idleSince === undefined ? 0 : Math.max(0, now - Math.max(this.#idleSince, this.#pace?.setAt ?? 0));
	}

	/** Whether the process holds work: the pace climbs only while it does. */
	setBusy(busy: boolean): void {
		const now = this.#clock.now();
		if (busy && this.#idleSince !== undefined) {
			this.#idleMs += this.#idleSpell(now);
			this.#idleSince = undefined;
		} else if (!busy && this.#idleSince === undefined) {
			this.#idleSince = now;
		}
	}

	/** This instance's pace, for sharing; undefined while unpaced. */
	get pace(): Pace | undefined {
		return this.#pace;
	}

	get throttleEvents(): number {
		return this.#throttleEvents;
	}

	/**
	 * Takes `operations` from the pacing budget and returns how long (ms) to wait before sending them: 0 when unpaced or
	 * when the budget holds them. The budget holds at most a tenth of a second's worth (or one request's operations).
	 */
	reserve(operations: number): number {
		if (this.#unstarted) {
			this.#unstarted = false;
			this.#restartInterval(this.#clock.now(), 0);
		}

		const rate = this.rate;
		if (!Number.isFinite(rate)) {
			return 0;
		}

		const now = this.#clock.now();
		const capacity = Math.max(operations, rate / 10);
		this.#tokens = Math.min(capacity, this.#tokens + ((now - this.#tokensAt) / 1000) * rate);
		this.#tokensAt = now;
		this.#tokens -= operations;
		return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / rate) * 1000);
	}

	/** A request came back without throttling, carrying `operations` accepted operations. */
	recordAccepted(operations: number): void {
		this.#accepted += operations;
		const bin = Math.max(0, Math.floor((this.#clock.now() - this.#historyStart) / historyBinMs));
		while (this.#history.length <= bin) {
			this.#history.push(0);
		}

		this.#history[bin]! += operations;
		if (this.#history.length > historyBins) {
			const dropped = this.#history.length - historyBins;
			this.#history.splice(0, dropped);
			this.#historyStart += dropped * historyBinMs;
		}

		this.#concurrency = Math.min(this.#maximum, this.#concurrency + 1 / (Math.max(1, Math.floor(this.#concurrency)) * this.#instances));
	}

	/** The instances working now (this one included), as last told. */
	get instances(): number {
		return this.#instances;
	}

	/**
	 * How many instances work now (this one included). Before the first request, the starting concurrency is shared.
	 * Once started, a change starts the evidence again: what this instance sent at another share of the budget says
	 * nothing of the budget now (10 s at half of 400/s and 0.6 s at all of it fit a 429 to 193/s, not 400/s).
	 */
	setInstances(instances: number): void {
		const previous = this.#instances;
		this.#instances = Math.max(1, Math.floor(instances));
		if (this.#unstarted) {
			this.#concurrency = Math.max(1, Math.ceil(this.#initial / this.#instances));
		} else if (this.#instances !== previous && this.#clock.now() > this.#intervalStart) {
			// (During a wait the interval has not begun: nothing gathered yet, and the wait itself still counts.)
			this.#restartEvidence(this.#clock.now());
		}
	}

	/**
	 * A throttle event: the first 429 of a burst (429s for requests sent before the gate closed are the same event and
	 * must not be passed here again). `retryAfterMs` is how long the gate stays shut. Returns the new pace.
	 */
	recordThrottle(retryAfterMs: number): Pace | undefined {
		const now = this.#clock.now();
		this.#throttleEvents++;
		this.#concurrency = Math.max(1, this.#concurrency / 2);
		const setAt = now + retryAfterMs;
		const current = this.rate;
		const interval = (now - this.#intervalStart) / 1000;
		const evidence: ThrottleEvidence = {setAt, retryAfterMs, accepted: this.#accepted, intervalSeconds: interval, enough: this.#accepted >= minimumEvidence && interval > 0};
		this.#easedFrom = undefined;
		if (Number.isFinite(current)) {
			// Paced, and still too fast: the 429 came at `current`, or below it if the pace was not reached or another
			// client shares the budget (pace.ts says how the next pace is chosen).
			this.#pace = pacedPace(current, evidence.enough ? this.#fit(now, interval) : undefined, evidence, this.#bucket);
		} else {
			const first = firstPace(evidence, this.#bucket, minimumEvidence);
			if (first) {
				this.#pace = first.pace;
				this.#bucket = first.bucket;
			}
		}

		// Too few accepted operations say nothing of the ceiling (another client may have spent it): stay unpaced, and
		// let the halved concurrency and the gate do the backing off.
		this.#restartInterval(setAt, retryAfterMs);
		return this.#pace;
	}

	/**
	 * An early warning: Graph has spent `used` (0.8 or more) of the app's limit; acted on at most once a second while
	 * paced (every 100 ms while not), never while the gate is shut. Paced, the pace eases below the rate it came at (`easedPace`). Unpaced, the concurrency
	 * drops to one (it grows back by one per round) and the pace is left for the first 429 to set (that 429 is what
	 * measures the bucket): few requests are in flight when the bucket runs out, so few are refused (`npm run bench`'s
	 * early-warning scenario against penalty-window). Returns what it eased, if anything.
	 */
	recordLimitWarning(used: number): {eased: 'pace'; pace: Pace} | {eased: 'concurrency'} | undefined {
		const now = this.#clock.now();
		const pace = this.#pace;
		const spacing = pace ? limitWarningSpacingMs : unpacedWarningSpacingMs;
		if (!(used >= limitWarningFrom) || now - this.#easedAt < spacing || (pace && now < pace.setAt)) {
			return undefined;
		}

		this.#easedAt = now;
		if (!pace) {
			this.#concurrency = 1;
			return {eased: 'concurrency'};
		}

		this.#easedFrom ??= pace;
		this.#pace = easedPace(pace, this.rate, now);
		return {eased: 'pace', pace: this.#pace};
	}

	/** The ceiling a paced 429 shows: the fitted bucket rate, or (no bucket size known) what was accepted per second. */
	#fit(now: number, intervalSeconds: number): number {
		if (this.#bucket === undefined) {
			return this.#accepted / intervalSeconds;
		}

		// Past a minute the oldest bins are gone, and with them the wait that preceded them.
		const waitBeforeMs = this.#historyStart === this.#intervalStart ? this.#waitBeforeMs : 0;
		return fittedRate(this.#history, historyBinMs, now - this.#historyStart, waitBeforeMs, this.#bucket);
	}

	/**
	 * Takes the pace the instances' shared record holds (already divided to this instance's share). The accepted count
	 * starts again, so the next estimate measures the pace in force. An ease is this instance's own news, which the
	 * record does not carry: offered the pace it eased from again, it keeps the ease (at the share offered); a pace
	 * set since replaces it. Otherwise each exchange, a second later, undid the ease (`npm run bench`'s early-warning
	 * logs showed "eased before a 429" and, a second later, the pace before it "from the instances' shared record").
	 */
	adopt(pace: Pace): void {
		const easedFrom = this.#easedFrom;
		if (easedFrom && this.#pace && pace.setAt === easedFrom.setAt) {
			const share = pace.rate / easedFrom.rate;
			if (share !== 1) {
				this.#pace = scalePace(this.#pace, share);
				this.#easedFrom = pace;
			}

			return;
		}

		this.#easedFrom = undefined;
		const changed = this.#pace?.setAt !== pace.setAt;
		this.#pace = pace;
		if (changed) {
			const now = this.#clock.now();
			this.#restartInterval(Math.max(now, pace.setAt), Math.max(0, pace.setAt - now));
		}
	}

	#restartInterval(at: number, waitBeforeMs: number): void {
		this.#unstarted = false;
		this.#idleMs = 0;
		if (this.#idleSince !== undefined) {
			this.#idleSince = at;
		}

		this.#tokens = 0;
		this.#tokensAt = at;
		this.#restartEvidence(at, waitBeforeMs);
	}

	/** The accepted operations (and their history) count again from `at`, after a wait of `waitBeforeMs`. */
	#restartEvidence(at: number, waitBeforeMs = 0): void {
		this.#accepted = 0;
		this.#intervalStart = at;
		this.#waitBeforeMs = waitBeforeMs;
		this.#history = [];
		this.#historyStart = at;
	}
}
