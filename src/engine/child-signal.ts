// Abort signals for one run or one request, hooked to a long-lived parent without piling listeners on it.

/**
 * An abort signal that follows `parent` (and fires a `TimeoutError` after `timeoutMs`, if given), with a `dispose` that
 * unhooks it from the parent. Used instead of `AbortSignal.any` so that a long-lived parent (the host's shutdown signal)
 * does not collect a listener per request.
 */
export function childSignal(parent: AbortSignal | undefined, timeoutMs?: number): {signal: AbortSignal; abort(): void; dispose(): void} {
	const controller = new AbortController();
	const abort = () => {
		controller.abort(new DOMException('The operation was aborted.', 'AbortError'));
	};

	const timer =
		timeoutMs === undefined
			? undefined
			: setTimeout(() => {
					controller.abort(new DOMException('The operation timed out.', 'TimeoutError'));
				}, timeoutMs);
	if (parent?.aborted) {
		abort();
	} else {
		parent?.addEventListener('abort', abort, {once: true});
	}

	return {
		signal: controller.signal,
		abort,
		dispose() {
			clearTimeout(timer);
			parent?.removeEventListener('abort', abort);
		},
	};
}
