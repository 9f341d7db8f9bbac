// How deeply JSON nests, found without recursion: hostile input nested thousands of levels deep overflows the stack of
// anything recursive (JSON.parse, JSON.stringify, String()), so depth is bounded before any of them runs.

/** Messages and file rows nest a few levels; anything deeper than this is refused. Defaults to 32. */
export const maximumJsonDepth = 32;

/**
 * True when JSON `text` nests objects or arrays more than `maximum` deep, by one linear scan (strings skipped).
 *
 * @example
 * jsonTextTooDeep('[[[1]]]', 2) //=> true
 */
export function jsonTextTooDeep(text: string, maximum = maximumJsonDepth): boolean {
	let depth = 0;
	let inString = false;
	for (let index = 0; index < text.length; index++) {
		const code = text.charCodeAt(index);
		if (inString) {
			if (code === 0x5c) {
				index++; // Backslash: skip the escaped character.
			} else if (code === 0x22) {
				inString = false;
			}
		} else if (code === 0x22) {
			inString = true;
		} else if (code === 0x5b || code === 0x7b) {
			if (++depth > maximum) {
				return true;
			}
		} else if (code === 0x5d || code === 0x7d) {
			depth--;
		}
	}

	return false;
}

/** True when a parsed value nests objects or arrays more than `maximum` deep; an explicit stack, not recursion. */
export function valueTooDeep(value: unknown, maximum = maximumJsonDepth): boolean {
	const stack: Array<{value: unknown; depth: number}> = [{value, depth: 0}];
	while (stack.length > 0) {
		const {value: current, depth} = stack.pop()!;
		if (typeof current !== 'object' || current === null) {
			continue;
		}

		if (depth + 1 > maximum) {
			return true;
		}

		for (const child of Array.isArray(current) ? current : Object.values(current)) {
			if (typeof child === 'object' && child !== null) {
				stack.push({value: child, depth: depth + 1});
			}
		}
	}

	return false;
}

/**
 * JSON.stringify for values of any depth (a parsed message nested thousands deep, which JSON.stringify overflows on):
 * the same text, written with an explicit stack.
 */
export function stringifyWithoutRecursion(value: unknown): string {
	type Frame = {items: unknown[]; keys: string[] | undefined; index: number};
	const out: string[] = [];
	const stack: Frame[] = [];
	const open = (item: unknown) => {
		if (Array.isArray(item)) {
			out.push('[');
			stack.push({items: item, keys: undefined, index: 0});
		} else if (typeof item === 'object' && item !== null) {
			const keys = Object.keys(item).filter(key => (item as Record<string, unknown>)[key] !== undefined);
			out.push('{');
			stack.push({items: keys.map(key => (item as Record<string, unknown>)[key]), keys, index: 0});
		} else {
			out.push(JSON.stringify(item) ?? 'null');
		}
	};

	open(value);
	while (stack.length > 0) {
		const frame = stack.at(-1)!;
		if (frame.index >= frame.items.length) {
			out.push(frame.keys ? '}' : ']');
			stack.pop();
			continue;
		}

		if (frame.index > 0) {
			out.push(',');
		}

		if (frame.keys) {
			out.push(JSON.stringify(frame.keys[frame.index]), ':');
		}

		open(frame.items[frame.index++]);
	}

	return out.join('');
}
