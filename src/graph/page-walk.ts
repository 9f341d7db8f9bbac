// Following `@odata.nextLink` from page to page, with a guard: a link already followed, or more pages than any real
// collection has, means the service is broken or hostile, and the walk ends with a failure that names it instead of
// reading (and holding) pages forever.

import type {GraphFailure} from './graph-failure.js';

/**
 * Defaults to 10,000 pages per collection: at Graph's 100 items a page, a million items, far beyond a tenant's
 * packages or one package's incompatible list.
 */
export const maximumPagesPerCollection = 10_000;

/**
 * @example
 * const walk = new PageWalk();
 * const stop = walk.follow(page.nextLink); // undefined: go on; a GraphFailure: stop reading, report it
 */
export class PageWalk {
	readonly #maximumPages: number;
	readonly #followed = new Set<string>();

	constructor(maximumPages = maximumPagesPerCollection) {
		if (!Number.isSafeInteger(maximumPages) || maximumPages < 1) {
			throw new TypeError(`maximumPages must be a positive integer, got ${maximumPages}`);
		}

		this.#maximumPages = maximumPages;
	}

	/** Pages read so far, the first included. */
	get pages(): number {
		return this.#followed.size + 1;
	}

	/** Called with each page's nextLink before it is followed: undefined to follow it, or why not. */
	follow(nextLink: string): GraphFailure | undefined {
		if (this.#followed.has(nextLink)) {
			return {
				kind: 'server',
				code: 'RepeatedNextLink',
				message: `Graph's @odata.nextLink after page ${this.pages} names a page already read: stopped reading (a paging loop)`,
			};
		}

		if (this.pages >= this.#maximumPages) {
			return {
				kind: 'server',
				code: 'TooManyPages',
				message: `more than ${this.#maximumPages.toLocaleString('en-US')} pages: stopped reading (no collection sod-sync reads is that long)`,
			};
		}

		this.#followed.add(nextLink);
		return undefined;
	}
}
