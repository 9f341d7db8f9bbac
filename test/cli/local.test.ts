// The README's first command, as a new user runs it.

import {describe, expect, it} from 'vitest';
import {runCli} from '../support/cli.js';

describe('sod-sync local (npm run local)', () => {
	it('runs the sample import end to end and explains every dead letter', async () => {
		const result = await runCli(['local'], {}, 90_000);
		expect(result.code, result.stdout).toBe(0);
		const output = result.stdout;
		expect(output).toContain('sample-import.csv: line 91: an access package cannot be incompatible with itself');
		expect(output).toMatch(/enqueued 299 pairs in 1 messages/);
		// 296 new links plus one the tenant already had; dropped connections may turn some "linked" into verified "already-linked".
		const count = (outcome: string) => Number(new RegExp(`\\n  ${outcome} +(\\d+)`).exec(output)?.[1]);
		expect(count('linked') + count('already-linked')).toBe(297);
		expect(count('requeued')).toBe(0);
		expect(output).toMatch(/dead-letter +3 +\(invalid-message 1, invalid-pair 1, not-found 1\)/);
		expect(output).toMatch(/links held: 297/);
		expect(output).toMatch(/0 unmatched routes/);
		expect(output).toMatch(/3 dead letters on 'sod-pairs-dead-letter'/);
		expect(output).toMatch(/not-found \(1\)\n.*-> 0b5e3f6a-7c1d-4e2f-9a8b-000000000404 .*404 ResourceNotFound/);
	}, 120_000);
});
