// The benchmark's baseline: the job as written straight from the Graph SDK's documentation. p-limit(C) over one
// client.api(...).post(...) per pair, the SDK's default middleware (its RetryHandler retries 429/503/504 three times,
// per request), and nothing else. Reads pairs as JSON Lines from a file; prints {"linked", "failed"} as JSON.

import {readFileSync} from 'node:fs';
import {Client} from '@microsoft/microsoft-graph-client';
import pLimit from 'p-limit';

const [pairsFile, concurrencyText] = process.argv.slice(2);
const baseUrl = process.env.GRAPH_BASE_URL!;
const pairs = readFileSync(pairsFile!, 'utf8')
	.split('\n')
	.filter(Boolean)
	.map(line => JSON.parse(line) as {accessPackageId: string; incompatibleAccessPackageId: string});
const client = Client.init({
	baseUrl,
	defaultVersion: 'v1.0',
	authProvider: done => {
		done(null, 'token');
	},
});
const limit = pLimit(Number(concurrencyText));
let linked = 0;
let failed = 0;
await Promise.all(
	pairs.map(async pair =>
		limit(async () => {
			try {
				await client
					.api(`/identityGovernance/entitlementManagement/accessPackages/${pair.accessPackageId}/incompatibleAccessPackages/$ref`)
					.post({'@odata.id': `${baseUrl}/v1.0/identityGovernance/entitlementManagement/accessPackages/${pair.incompatibleAccessPackageId}`});
				linked++;
			} catch {
				failed++;
			}
		}),
	),
);
process.stdout.write(`${JSON.stringify({linked, failed})}\n`);
