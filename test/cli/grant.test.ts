// `sod-sync grant` against the simulator's service principals and app role assignments, through the real Graph SDK.

import {afterEach, describe, expect, it} from 'vitest';
import {GraphSimulator} from '../../src/simulator/graph-simulator.js';
import {runInProcess} from '../support/cli.js';

let simulator: GraphSimulator | undefined;
afterEach(async () => {
	await simulator?.close();
	simulator = undefined;
});

async function tenant() {
	simulator = await GraphSimulator.start({packageCount: 1});
	const identity = simulator.grants.addServicePrincipal('id-sod-sync');
	const environment = {GRAPH_BASE_URL: simulator.baseUrl, GRAPH_ACCESS_TOKEN: simulator.token};
	const roleId = (value: string) => simulator!.grants.graph.appRoles.find(role => role.value === value)!.id;
	return {simulator, identity, environment, roleId};
}

describe('sod-sync grant', () => {
	it('grants EntitlementManagement.ReadWrite.All, looked up by value, to the identity named by its principal id', async () => {
		const {simulator, identity, environment, roleId} = await tenant();
		const result = await runInProcess(['grant', identity.id], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/^granted id-sod-sync \(principal .*\) Microsoft Graph EntitlementManagement\.ReadWrite\.All\n$/);
		expect(simulator.grants.assignmentsOf(identity.id)).toEqual([
			expect.objectContaining({resourceId: simulator.grants.graph.id, appRoleId: roleId('EntitlementManagement.ReadWrite.All')}),
		]);
	});

	it('finds the identity by its client id too, and is idempotent: already granted is success, nothing added', async () => {
		const {simulator, identity, environment} = await tenant();
		expect((await runInProcess(['grant', identity.appId.toUpperCase()], environment)).code).toBe(0);
		const again = await runInProcess(['grant', identity.appId], environment);
		expect(again.code).toBe(0);
		expect(again.stdout).toMatch(/already has Microsoft Graph EntitlementManagement\.ReadWrite\.All: nothing to do/);
		expect(simulator.grants.assignmentsOf(identity.id)).toHaveLength(1);
	});

	it('grants EntitlementManagement.Read.All with --read-only', async () => {
		const {simulator, identity, environment, roleId} = await tenant();
		expect((await runInProcess(['grant', identity.id, '--read-only'], environment)).code).toBe(0);
		expect(simulator.grants.assignmentsOf(identity.id).map(item => item.appRoleId)).toEqual([roleId('EntitlementManagement.Read.All')]);
	});

	it('changes nothing with --dry-run, and says what it would do', async () => {
		const {simulator, identity, environment} = await tenant();
		const result = await runInProcess(['grant', identity.id, '--dry-run'], environment);
		expect(result.code).toBe(0);
		expect(result.stdout).toMatch(/^would grant id-sod-sync .* Microsoft Graph EntitlementManagement\.ReadWrite\.All .*nothing changed/);
		expect(simulator.grants.assignmentsOf(identity.id)).toEqual([]);
	});

	it('exits 1 naming what the caller lacks when Graph refuses the grant', async () => {
		const {simulator, identity, environment} = await tenant();
		simulator.grants.callerMayGrant = false;
		const result = await runInProcess(['grant', identity.id], environment);
		expect(result.code).toBe(1);
		expect(result.stderr).toMatch(/Graph refused assigning the app role: 403 Authorization_RequestDenied .*AppRoleAssignment\.ReadWrite\.All and Application\.Read\.All .*Privileged Role Administrator/);
	});

	it('exits 1 for an identity the tenant does not know or that is not a GUID, and 2 without one', async () => {
		const {environment} = await tenant();
		const unknown = await runInProcess(['grant', '00000000-0000-4000-8000-000000000123'], environment);
		expect(unknown.code).toBe(1);
		expect(unknown.stderr).toMatch(/no service principal has the object id or client id 00000000-0000-4000-8000-000000000123/);
		const bad = await runInProcess(['grant', 'mi-sod-sync'], environment);
		expect(bad.code).toBe(1);
		expect(bad.stderr).toMatch(/'mi-sod-sync' is not a GUID/);
		expect((await runInProcess(['grant'], environment)).code).toBe(2);
	});
});
