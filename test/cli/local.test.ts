// The README's first command, as a new user runs it.

import {describe, expect, it} from 'vitest';
import {runCli} from '../support/cli.js';

describe('sod-sync local (npm run local)', () => {
	it('runs the sample import end to end and explains every dead letter', async () => {
		const result = await runCli(['local'], {}, 90_000);
		expect(result.code, result.output).toBe(0);
		const output = result.output;
		// Dozens of pre-image reads wait on the gate at once: on the invocation's signal, not piled on the host's.
		expect(output).not.toContain('MaxListenersExceededWarning');
		expect(output).toContain('sample-import.csv: line 91: an access package cannot be incompatible with itself');
		// Line 121 repeats rule 6 in upper case: sent once, as the worker would read it.
		expect(output).toMatch(/enqueued 302 pairs in 1 messages to 'sod-pairs', correlation local-demo; 1 invalid rows skipped; 1 repeated pairs sent once/);
		// 296 new links and 3 new group links, plus one of each the tenant already had; dropped connections may turn some
		// "linked" into verified "already-linked".
		const count = (outcome: string, column = 1) => Number(new RegExp(`\\n  ${outcome} +(\\d+) +(\\d+)`).exec(output)?.[column]);
		expect(count('linked') + count('already-linked')).toBe(301);
		expect(count('linked', 2) + count('already-linked', 2)).toBe(4);
		expect(count('requeued')).toBe(0);
		expect(output).toMatch(/dead-letter +3 +0  \(invalid-message 1, invalid-pair 1, not-found 1\)/);
		expect(output).toMatch(/links held: 297, group links held: 4/);
		expect(output).toMatch(/0 unmatched routes/);
		expect(output).toMatch(/3 dead letters on 'sod-pairs-dead-letter'/);
		expect(output).toMatch(/not-found \(1\)\n.*-> 0b5e3f6a-7c1d-4e2f-9a8b-000000000404 .*404 ResourceNotFound/);
		// The ledger tells the two apart exactly, dropped connections or not: 296 added by the import, one there before it.
		const status = output.slice(output.indexOf('$ sod-sync status local-demo'));
		expect(status).toMatch(/local-demo: done; import from sample-import.csv/);
		expect(status).toMatch(/\n  pairs +302  1 invalid rows skipped, 1 repeated pairs sent once\n  linked +299\n  already-linked +2\n/);
		expect(status).toMatch(/\n  dead-letter +1  not-found 1\n  requeued +0\n  pending +0\n/);
		expect(status).toMatch(/changed: 299 links added, 0 removed/);
	}, 120_000);
});
