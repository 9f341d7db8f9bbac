// One source of truth: the deployment template sets exactly the settings src/config/settings.ts knows, with the queue and
// container names it defaults to; and what azd, Flex Consumption and App Service would refuse on a first `azd up` is
// not in it. (The template is not compiled here: no Bicep compiler; its text is read.)

import {readFileSync} from 'node:fs';
import {describe, expect, it} from 'vitest';
import {defaults, disabledSettingName, functionNames, platformSettingNames, readReconcileSettings, readSettings, settingNames} from '../../src/config/settings.js';
import {ledgerTableName} from '../../src/ledger/ledger-store.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const template = read('infra/app.bicep');
const mainTemplate = read('infra/main.bicep');
const azureYaml = read('azure.yaml');
const appSettings = [...template.matchAll(/\{name: '([^']+)', value: ([^}]+)\}/g)].map(([, name, value]) => ({name: name!, value: value!.trim()}));
const literal = (value: string) => (/^'[^'$]*'$/.test(value) ? value.slice(1, -1) : undefined);
const variable = (name: string) => new RegExp(`^var ${name} = '([^']*)'`, 'm').exec(template)?.[1];

describe('infra/app.bicep', () => {
	it('sets only settings that src/config/settings.ts knows (its own or the platform\'s), each once', () => {
		const known = new Set<string>([...Object.values(settingNames), ...platformSettingNames]);
		expect(appSettings.length).toBeGreaterThan(20);
		expect(appSettings.map(setting => setting.name).filter(name => !known.has(name))).toEqual([]);
		expect(new Set(appSettings.map(setting => setting.name)).size).toBe(appSettings.length);
	});

	it('sets every sod-sync setting but the local-only ones, and never a token or a connection string', () => {
		const names = new Set(appSettings.map(setting => setting.name));
		const localOnly: string[] = [settingNames.graphAccessToken, settingNames.storage];
		expect(Object.values(settingNames).filter(name => !localOnly.includes(name) && !names.has(name))).toEqual([]);
		expect(localOnly.filter(name => names.has(name))).toEqual([]);
		expect(names.has('AzureWebJobsStorage__queueServiceUri') && names.has('AzureWebJobsStorage__credential')).toBe(true);
	});

	it('names the queues and containers src/config/settings.ts defaults to', () => {
		expect(variable('pairsQueue')).toBe(defaults.queueName);
		expect(variable('deadLetterQueue')).toBe(defaults.deadLetterQueueName);
		for (const container of [defaults.manifestContainer, defaults.throttleStateContainer, defaults.deadLetterContainer]) {
			expect(template).toContain(`'${container}'`);
		}

		expect(appSettings.find(setting => setting.name === settingNames.queueName)?.value).toBe('pairsQueue');
	});

	it('gives literal values that the settings readers accept', () => {
		const environment: Record<string, string> = {[`${settingNames.storage}__queueServiceUri`]: 'https://account.queue.core.windows.net'};
		for (const {name, value} of appSettings) {
			const text = literal(value);
			if (text !== undefined && !name.startsWith(settingNames.storage)) {
				environment[name] = text;
			}
		}

		expect(() => readSettings(environment)).not.toThrow();
		expect(() => readReconcileSettings(environment)).not.toThrow();
	});
});

/** The body of the resource declared as `resource <symbol> '<type>' = ...`, up to the next top-level declaration. */
function resourceBlock(text: string, symbol: string): string {
	const start = text.indexOf(`resource ${symbol} `);
	expect(start, `resource ${symbol}`).toBeGreaterThanOrEqual(0);
	const rest = text.slice(start + 1);
	const end = rest.search(/^(resource|output|param|var|module) /m);
	return text.slice(start, end === -1 ? undefined : start + 1 + end);
}

describe('a first azd up', () => {
	it('deploys the package as built: azure.yaml turns remote build off for the function service', () => {
		// Remotely, Oryx runs npm install and npm run build in the deployed folder, which has no tsconfig (TS5057).
		expect(azureYaml).toMatch(/^ {4}host: function$/m);
		expect(azureYaml).toMatch(/^ {4}remoteBuild: false$/m);
	});

	it('runs the prepackage hook on Windows too (posix and windows variants)', () => {
		expect(azureYaml).toMatch(/prepackage:\n {8}posix:\n {10}shell: sh\n {10}run: npm run package\n/);
		expect(azureYaml).toMatch(/ {8}windows:\n {10}shell: pwsh\n {10}run: npm run package\n/);
	});

	it('sets only app setting names that App Service on Linux accepts (letters, digits, . and _)', () => {
		expect(appSettings.map(setting => setting.name).filter(name => !/^[A-Za-z0-9._]+$/.test(name))).toEqual([]);
		expect(platformSettingNames.filter(name => !/^[A-Za-z0-9._]+$/.test(name))).toEqual([]);
	});

	it('switches the timer off by the setting the host reads for the registered function name', () => {
		const name = disabledSettingName(functionNames.reconcileSchedule);
		expect(appSettings.find(setting => setting.name === name)?.value).toBe("reconcileEnabled ? 'false' : 'true'");
		expect(appSettings.some(setting => setting.name.startsWith('AzureWebJobs.') && setting.name !== name)).toBe(false);
	});

	it('sets a storage endpoint only for a service the identity holds a data role on', () => {
		// The host uses every AzureWebJobsStorage__<service>ServiceUri it is given; without a role it logs 403s.
		const roleOf = {blob: 'storageBlobDataOwner', queue: 'storageQueueDataContributor', table: 'storageTableDataContributor'} as const;
		const identityRoles = new Set(
			template
				.split(/^(?=resource )/m)
				.filter(block => block.includes('principalId: identity.properties.principalId'))
				.flatMap(block => [...block.matchAll(/roles\.(\w+)/g)].map(([, role]) => role)),
		);
		const granted = (role: string) => identityRoles.has(role);
		expect(granted('storageQueueDataContributor')).toBe(true);
		for (const {name} of appSettings) {
			const service = /^AzureWebJobsStorage__(\w+)ServiceUri$/.exec(name)?.[1] as keyof typeof roleOf | undefined;
			if (service) {
				expect(roleOf[service], name).toBeDefined();
				expect(granted(roleOf[service]), `${name} without ${roleOf[service]}`).toBe(true);
			}
		}
	});

	it('assigns the operator\'s roles with the principal type azd reports, User by default', () => {
		const parameters = JSON.parse(read('infra/main.parameters.json')) as {parameters: Record<string, {value: unknown}>};
		expect(parameters.parameters.principalType?.value).toBe('${AZURE_PRINCIPAL_TYPE=User}');
		expect(mainTemplate).toMatch(/@allowed\(\['User', 'ServicePrincipal'\]\)\n@description\([^\n]*\)\nparam principalType string = 'User'/);
		expect(mainTemplate).toMatch(/principalType: principalType/);
		const operatorAssignments = [...template.matchAll(/principalId: principalId\n\s+principalType: (\S+)/g)].map(([, type]) => type);
		expect(operatorAssignments.length).toBe(3);
		expect(operatorAssignments.every(type => type === 'principalType')).toBe(true);
		expect(template).not.toMatch(/principalType: 'User'/);
	});

	it('scopes the operator\'s blob role to the dead-letter and manifest containers, not the account', () => {
		const blob = resourceBlock(template, 'operatorBlobRoles');
		expect(blob).toMatch(/scope: blobContainers\[i\]/);
		expect(blob).toContain('roles.storageBlobDataContributor');
		expect(/var operatorContainers = \[([^\]]*)\]/.exec(template)?.[1]).toBe('manifestContainer, deadLetterContainer');
		expect(variable('manifestContainer')).toBe(defaults.manifestContainer);
		expect(variable('deadLetterContainer')).toBe(defaults.deadLetterContainer);
	});

	it('keeps the import ledger in the table the code names, the app and the operator each with a table data role', () => {
		expect(/resource ledgerTable [^\n]*\{\n\s+parent: tableService\n\s+name: '([^']+)'/.exec(template)?.[1]).toBe(ledgerTableName);
		expect(appSettings.find(setting => setting.name === 'AzureWebJobsStorage__tableServiceUri')?.value).toBe('storage.properties.primaryEndpoints.table');
		expect(resourceBlock(template, 'appTableRole')).toMatch(/roles\.storageTableDataContributor[\s\S]*principalId: identity\.properties\.principalId/);
		const operator = resourceBlock(template, 'operatorTableRole');
		expect(operator).toMatch(/scope: ledgerTable\n/);
		expect(operator).toContain('roles.storageTableDataContributor');
		expect(/storageTableDataContributor: '([^']+)'/.exec(template)?.[1]).toBe('0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3');
	});

	it('deploys Node 22 (Node 20 is past its end of life)', () => {
		expect(/runtime: \{\s*name: 'node'\s*version: '(\d+)'/.exec(template)?.[1]).toBe('22');
		expect(mainTemplate).toMatch(/Node\.js 22/);
	});

	it('asks azd for a location with its region picker', () => {
		expect(mainTemplate).toMatch(/@metadata\(\{azd: \{type: 'location'\}\}\)\nparam location string/);
	});
});
