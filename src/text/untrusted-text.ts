// Text that came from a producer or from Graph, made safe to print: control characters (a newline that forges a log
// line, an ANSI escape that repaints a terminal) and bidirectional overrides are shown as \u escapes.

const unsafe = /[\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u2028\u2029\u202A-\u202E\u2066-\u2069]/g;

/** True when `text` holds a character `printable` would escape. */
export function hasUnsafeCharacters(text: string): boolean {
	unsafe.lastIndex = 0;
	return unsafe.test(text);
}

/**
 * @example
 * printable('import-7\n\u001B[32mlinked 1') //=> 'import-7\\u000a\\u001b[32mlinked 1'
 */
export function printable(text: string, maximum = Number.POSITIVE_INFINITY): string {
	const shown = text.length > maximum ? `${text.slice(0, maximum)}...` : text;
	return shown.replace(unsafe, character => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
