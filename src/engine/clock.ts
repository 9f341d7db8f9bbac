// Time, behind an interface so that tests can drive it (vitest's fake timers patch Date and setTimeout).

export interface Clock {
	now(): number;
	/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
	sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Node's timers fire at once past this (with a warning): a longer sleep is taken in steps of it. */
const longestTimerMs = 2 ** 31 - 1;

export const systemClock: Clock = {
	now: () => Date.now(),
	async sleep(ms, signal) {
		signal?.throwIfAborted();
		if (ms <= 0) {
			return;
		}

		if (ms > longestTimerMs) {
			await systemClock.sleep(longestTimerMs, signal);
			return systemClock.sleep(ms - longestTimerMs, signal);
		}

		await new Promise<void>((resolve, reject) => {
			const onAbort = () => {
				clearTimeout(timer);
				reject(signal!.reason);
			};

			const timer = setTimeout(() => {
				signal?.removeEventListener('abort', onAbort);
				resolve();
			}, ms);
			signal?.addEventListener('abort', onAbort, {once: true});
		});
	},
};
