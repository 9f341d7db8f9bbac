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
	simulator = await GraphSimulator.start({packageCount: 1, logRequests: true});
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

	it('adds GroupMember.Read.All with --group-members (violations of group rules), and only then', async () => {
		const {simulator, identity, environment, roleId} = await tenant();
		expect((await runInProcess(['grant', identity.id, '--read-only'], environment)).code).toBe(0);
		const result = await runInProcess(['grant', identity.id, '--read-only', '--group-members'], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/already has Microsoft Graph EntitlementManagement\.Read\.All: nothing to do\ngranted id-sod-sync .* Microsoft Graph GroupMember\.Read\.All\n$/);
		expect(simulator.grants.assignmentsOf(identity.id).map(item => item.appRoleId)).toEqual([roleId('EntitlementManagement.Read.All'), roleId('GroupMember.Read.All')]);
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

	it('reads every page of the identity\'s assignments: a grant on page 2 is already granted, nothing posted', async () => {
		const {simulator, identity, environment, roleId} = await tenant();
		simulator.grants.pageSize = 2;
		for (let index = 0; index < 5; index++) {
			simulator.grants.addAssignment(identity.id, simulator.grants.graph.id, `00000000-0000-4000-8000-00000000000${index}`);
		}

		simulator.grants.addAssignment(identity.id, simulator.grants.graph.id, roleId('EntitlementManagement.ReadWrite.All'));
		const result = await runInProcess(['grant', identity.id], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/already has Microsoft Graph EntitlementManagement\.ReadWrite\.All: nothing to do/);
		expect(simulator.grants.assignmentsOf(identity.id)).toHaveLength(6);
		expect(simulator.stats.byStatus[400]).toBeUndefined();
	});

	it('takes Graph\'s 400 "already exists" for a grant made meanwhile as success, after reading it back', async () => {
		const {simulator, identity, environment, roleId} = await tenant();
		// Granted by someone else after the plan read the assignments: the plan sees none, the POST meets the duplicate.
		simulator.grants.addAssignment(identity.id, simulator.grants.graph.id, roleId('EntitlementManagement.ReadWrite.All'));
		simulator.script({method: 'GET', path: /appRoleAssignments$/, reply: {status: 200, body: {value: []}}});
		const result = await runInProcess(['grant', identity.id], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/already has Microsoft Graph EntitlementManagement\.ReadWrite\.All \(granted meanwhile\): nothing to do/);
		expect(simulator.stats.byStatus[400]).toBe(1);
		expect(simulator.grants.assignmentsOf(identity.id)).toHaveLength(1);
	});

	it('exits 1 for a 400 when reading back shows no assignment (a real refusal, not a duplicate)', async () => {
		const {simulator, identity, environment} = await tenant();
		simulator.script({method: 'POST', path: /appRoleAssignedTo$/, reply: {status: 400, body: {error: {code: 'Request_BadRequest', message: 'Invalid appRoleId.'}}}});
		const result = await runInProcess(['grant', identity.id], environment);
		expect(result.code).toBe(1);
		expect(result.stderr).toMatch(/Graph failed assigning the app role: 400 Request_BadRequest Invalid appRoleId\./);
		expect(simulator.grants.assignmentsOf(identity.id)).toEqual([]);
	});

	it('escapes a display name from Graph: a forged line or a terminal escape is shown, not obeyed', async () => {
		const {simulator, environment} = await tenant();
		const forged = simulator.grants.addServicePrincipal('id-sod-sync\n\u001B[2K\u001B[1Agranted attacker-app Microsoft Graph RoleManagement.ReadWrite.Directory');
		const result = await runInProcess(['grant', forged.id], environment);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout.split('\n').filter(Boolean)).toHaveLength(1);
		expect(result.stdout).not.toMatch(/\u001B/);
		expect(result.stdout).toContain('id-sod-sync\\u000a\\u001b[2K\\u001b[1Agranted attacker-app');
	});

	it('refuses an id from Graph that is not a GUID before it enters a URL, and grants nothing', async () => {
		const {simulator, environment} = await tenant();
		const victim = simulator.grants.addServicePrincipal('victim');
		const hostile = simulator.grants.addServicePrincipal('id-sod-sync', {id: `../../users/${victim.id}/x`});
		simulator.stats.log.length = 0;
		const result = await runInProcess(['grant', hostile.appId], environment);
		expect(result.code).toBe(1);
		expect(result.stderr).toMatch(/Graph returned the identity's object id as '\.\.\/\.\.\/users\/.*', not a GUID: nothing was granted/);
		expect(result.stdout).not.toMatch(/granted/);
		expect(simulator.grants.assignmentsOf(`../../users/${victim.id}/x`)).toEqual([]);
		expect(simulator.stats.byStatus[201]).toBeUndefined();
		expect(simulator.stats.log.filter(line => line.includes('/users/') || line.includes('..'))).toEqual([]);
	});
});
