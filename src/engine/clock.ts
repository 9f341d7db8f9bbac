// Time, behind an interface so that tests can drive it (vitest's fake timers patch Date and setTimeout).

export interface Clock {
	now(): number;
	/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
	sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
	now: () => Date.now(),
	async sleep(ms, signal) {
		signal?.throwIfAborted();
		if (ms <= 0) {
			return;
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
