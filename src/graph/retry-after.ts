// Reads a `Retry-After` header as Graph sends it: whole seconds, decimal seconds (`2.128`) or an HTTP-date.

/**
 * The longest wait believed: 5 minutes. Graph's own Retry-After values are seconds to a couple of minutes; a larger
 * one (a proxy's mistake, a hostile answer) would stall every instance for that long, so it is cut to this and the
 * gate reopens to probe again (another 429 closes it again).
 */
export const maximumRetryAfterMs = 5 * 60_000;

/**
 * Returns the wait in milliseconds, at most `maximumRetryAfterMs`, or `undefined` when the header is absent or
 * unreadable (the caller then backs off on its own). A date in the past means "now" (0). Negative values and other
 * text are unreadable.
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
		return Math.min(maximumRetryAfterMs, Math.ceil(Number(text) * 1000));
	}

	// An HTTP-date names its weekday and its zone; Date.parse also accepts far looser text, so ask for the shape first.
	if (/^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(text)) {
		const at = Date.parse(text);
		if (!Number.isNaN(at)) {
			return Math.min(maximumRetryAfterMs, Math.max(0, at - now));
		}
	}

	return undefined;
}

/** The early-warning header Graph documents for directory resources: sent once 80% of a limit is spent. */
export const limitPercentageHeader = 'x-ms-throttle-limit-percentage';

/**
 * The share of its limit the app has spent, from `x-ms-throttle-limit-percentage` (documented as 0.8 to 1.8; a value
 * written as a percentage, 80 to 180, is read as one); undefined when absent or not a number in range.
 *
 * @example
 * parseLimitPercentage('0.85') // 0.85
 */
export function parseLimitPercentage(value: string | null | undefined): number | undefined {
	const number = Number(value?.trim());
	if (value === null || value === undefined || value.trim() === '' || !Number.isFinite(number) || number <= 0) {
		return undefined;
	}

	const share = number > 5 ? number / 100 : number;
	return share <= 5 ? share : undefined;
}
