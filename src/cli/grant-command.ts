// `sod-sync grant`: gives a managed identity Microsoft Graph's application permission, with the operator's own sign-in.

import {DefaultAzureCredential} from '@azure/identity';
import type {Client} from '@microsoft/microsoft-graph-client';
import {applyGrant, graphPermissions, GrantError, planGrant, type GraphPermission} from '../deploy/graph-permission-grant.js';
import {createGraphClient, credentialTokenSource, staticTokenSource} from '../graph/graph-client.js';
import {readGraphTarget} from '../config/settings.js';
import {printable} from '../text/untrusted-text.js';
import {exitCodes, parseCommandLine, UsageError, type CommandIo} from './command-line.js';

export const grantHelp = `Usage: sod-sync grant <identity> [--read-only] [--group-members] [--dry-run]

Gives a managed identity's service principal Microsoft Graph's application permission
EntitlementManagement.ReadWrite.All (with --read-only: EntitlementManagement.Read.All, for a deployment that only
reconciles and reports). <identity> is the identity's principal (object) id or its client id; azd prints both
(azd env get-values: SOD_IDENTITY_PRINCIPAL_ID, SOD_IDENTITY_CLIENT_ID).

With --group-members it also grants GroupMember.Read.All, which only \`sod-sync violations\` needs, and only for group
rules (a group rule's violators are the package's holders who are members of the group, nested groups included).
Least privilege: leave it out unless you report violations of group rules with this identity.

The role is looked up on Graph's own service principal by its value, never by a fixed id. Already granted is success.
It uses your own sign-in (DefaultAzureCredential: az login, or GRAPH_ACCESS_TOKEN for the simulator), which needs the
delegated permissions AppRoleAssignment.ReadWrite.All and Application.Read.All and a directory role that may grant
Microsoft Graph application permissions: Privileged Role Administrator (or Global Administrator).

Options:
  --read-only                grant EntitlementManagement.Read.All instead
  --group-members            also grant GroupMember.Read.All (violations of group rules)
  --dry-run                  print what would be granted, change nothing
  --graph-base-url URL       Graph's origin (default GRAPH_BASE_URL, else https://graph.microsoft.com)

Exit codes: 0 granted, already granted, or dry run; 1 the identity is unknown or Graph refused; 2 bad usage.`;

export async function grantCommand(args: string[], io: CommandIo): Promise<number> {
	const {values, positionals} = parseCommandLine(args, {'read-only': {type: 'boolean'}, 'group-members': {type: 'boolean'}, 'dry-run': {type: 'boolean'}});
	if (values.help) {
		io.stdout.write(`${grantHelp}\n`);
		return exitCodes.ok;
	}

	if (positionals.length !== 1) {
		throw new UsageError('grant takes one argument: the managed identity\'s principal id or client id');
	}

	const environment = {...io.environment, ...(typeof values['graph-base-url'] === 'string' ? {GRAPH_BASE_URL: values['graph-base-url']} : {})};
	const {graphBaseUrl, graphAccessToken} = readGraphTarget(environment);
	const tokenSource = graphAccessToken ? staticTokenSource(graphAccessToken) : credentialTokenSource(new DefaultAzureCredential(), graphBaseUrl);
	const client = createGraphClient({graphBaseUrl, apiVersion: 'v1.0', tokenSource});
	const permissions: GraphPermission[] = [values['read-only'] ? graphPermissions.readOnly : graphPermissions.readWrite, ...(values['group-members'] ? [graphPermissions.groupMembers] : [])];
	try {
		for (const permission of permissions) {
			// eslint-disable-next-line no-await-in-loop
			await grantOne(client, positionals[0]!, permission, graphBaseUrl, values['dry-run'] === true, io);
		}

		return exitCodes.ok;
	} catch (error) {
		if (error instanceof GrantError) {
			io.stderr.write(`sod-sync grant: ${error.message}\n`);
			return exitCodes.error;
		}

		throw error;
	}
}

async function grantOne(client: Client, identityId: string, permission: GraphPermission, graphBaseUrl: URL, dryRun: boolean, io: CommandIo): Promise<void> {
	const plan = await planGrant(client, identityId, permission, graphBaseUrl);
	// The display name is whatever the principal's owner chose: escaped, so it cannot forge or erase a line.
	const who = `${printable(plan.identity.displayName, 256) || 'service principal'} (principal ${plan.identity.id}, client ${plan.identity.appId})`;
	if (plan.alreadyGranted) {
		io.stdout.write(`${who} already has Microsoft Graph ${permission}: nothing to do\n`);
		return;
	}

	if (dryRun) {
		io.stdout.write(`would grant ${who} Microsoft Graph ${permission} (app role ${plan.role.id} on service principal ${plan.graph.id}); --dry-run: nothing changed\n`);
		return;
	}

	const applied = await applyGrant(client, plan, graphBaseUrl);
	io.stdout.write(
		applied === 'granted'
			? `granted ${who} Microsoft Graph ${permission}\n`
			: `${who} already has Microsoft Graph ${permission} (granted meanwhile): nothing to do\n`,
	);
}
