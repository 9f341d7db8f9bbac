// A simulated tenant on disk (`sod-sync simulate-graph --tenant FILE`): what it may hold, what it refuses, and the
// simulator it seeds.

import {writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {describe, expect, it} from 'vitest';
import {startSimulator} from '../../src/cli/simulate-graph-command.js';
import {readTenantFile} from '../../src/simulator/tenant-file.js';
import {useTemporaryDirectories} from '../support/temporary-directories.js';

const temporaryDirectory = useTemporaryDirectories('sod-tenant-');

async function tenantFile(content: unknown): Promise<string> {
	const path = join(await temporaryDirectory(), 'tenant.json');
	await writeFile(path, JSON.stringify(content));
	return path;
}

const guid = (n: number) => `00000000-0000-4000-9000-${String(n).padStart(12, '0')}`;

describe('readTenantFile', () => {
	it('reads packages with their catalog, links, users, nested groups and packages\' incompatible groups', async () => {
		const path = await tenantFile({
			packages: [{id: guid(1), displayName: 'Payroll', catalogId: guid(900)}, guid(2).toUpperCase()],
			links: [{accessPackageId: guid(1), incompatibleAccessPackageId: guid(2)}],
			users: [{id: guid(100), displayName: 'Ada', userPrincipalName: 'ada@contoso.example'}],
			groups: [
				{id: guid(10), displayName: 'Finance', members: [guid(11)]},
				{id: guid(11), members: [guid(100)]},
			],
			groupLinks: [{accessPackageId: guid(1), incompatibleGroupId: guid(10)}],
		});
		const tenant = await readTenantFile(path);
		expect(tenant.packages).toEqual([
			{id: guid(1), displayName: 'Payroll', catalogId: guid(900)},
			{id: guid(2), displayName: 'Package 00000000'},
		]);
		expect(tenant.groups).toEqual([
			{id: guid(10), displayName: 'Finance', members: [guid(11)]},
			{id: guid(11), displayName: 'Group 00000000', members: [guid(100)]},
		]);
		expect(tenant.groupLinks).toEqual([{accessPackageId: guid(1), incompatibleGroupId: guid(10)}]);

		// The simulator it seeds answers for all of it.
		const simulator = await startSimulator({}, path);
		try {
			expect(simulator.allLinks()).toEqual([`${guid(1)}/${guid(2)}`]);
			expect(simulator.allGroupLinks()).toEqual([`${guid(1)}/${guid(10)}`]);
			const response = await fetch(`${simulator.baseUrl}/v1.0/groups/${guid(10)}/transitiveMembers/microsoft.graph.user`, {headers: {authorization: `Bearer ${simulator.token}`}});
			expect(((await response.json()) as {value: unknown[]}).value).toEqual([{id: guid(100), displayName: 'Ada', userPrincipalName: 'ada@contoso.example'}]);
		} finally {
			await simulator.close();
		}
	});

	it.each([
		[{packages: [], groups: [{id: 'finance'}]}, /groups\[0\]\.id is not a GUID/],
		[{packages: [], groups: [{id: guid(1), members: ['x']}]}, /groups\[0\]\.members\[0\] is not a GUID/],
		[{packages: [], groupLinks: [{accessPackageId: guid(1)}]}, /groupLinks\[0\]\.incompatibleGroupId is not a GUID/],
		[{packages: [{id: guid(1), catalogId: 'finance'}]}, /packages\[0\]\.catalogId is not a GUID/],
	])('refuses %j, naming the entry', async (content, message) => {
		await expect(readTenantFile(await tenantFile(content))).rejects.toThrow(message);
	});
});
