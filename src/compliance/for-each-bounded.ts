// A bounded worker pool for the compliance reads: reconcile's packages, violations' rules.

/**
 * Runs `task` over `items`, at most `concurrency` at a time, with that many promises alive (not one per item: a scope of
 * a million packages costs a million closures otherwise). The first rejection stops handing out items and is thrown
 * once the tasks in progress settle.
 */
export async function forEachBounded<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>): Promise<void> {
	let next = 0;
	let failed = false;
	const worker = async () => {
		while (!failed && next < items.length) {
			const item = items[next++]!;
			try {
				// eslint-disable-next-line no-await-in-loop
				await task(item);
			} catch (error) {
				failed = true;
				throw error;
			}
		}
	};

	const settled = await Promise.allSettled(Array.from({length: Math.min(Math.max(1, concurrency), items.length)}, worker));
	const rejected = settled.find(result => result.status === 'rejected');
	if (rejected) {
		throw (rejected as PromiseRejectedResult).reason;
	}
}
