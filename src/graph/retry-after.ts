// Reads a `Retry-After` header as Graph sends it: whole seconds, decimal seconds (`2.128`) or an HTTP-date.

/**
 * Returns the wait in milliseconds, or `undefined` when the header is absent or unreadable (the caller then backs off
 * on its own). A date in the past means "now" (0). Negative or absurd values are treated as unreadable.
 *
 * @example
 * parseRetryAfter('2.128', Date.now()) //=> 2128
 * parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', Date.now()) //=> ms until then
 */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
	const text = value?.trim();
	if (!text) {
		return undefined;
	}

	if (/^\d+(?:\.\d+)?$/.test(text)) {
		return Math.ceil(Number(text) * 1000);
	}

	// An HTTP-date names its weekday and its zone; Date.parse also accepts far looser text, so ask for the shape first.
	if (/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) {
		const at = Date.parse(text);
		if (!Number.isNaN(at)) {
			return Math.max(0, at - now);
		}
	}

	return undefined;
}
