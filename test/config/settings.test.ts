import {readFileSync} from 'node:fs';
import {describe, expect, it} from 'vitest';
import {readFunctionTimeoutMs} from '../../src/config/host-config.js';
import {budgetProblem, checkSettingsAtStart, defaults, readSettings, settingNames, SettingsError, settingsTableMarkdown, settingTable, type SettingEntry} from '../../src/config/settings.js';

const storage = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;';

describe('readSettings', () => {
	it('applies the documented defaults', () => {
		const settings = readSettings({AzureWebJobsStorage: storage});
		expect(settings).toMatchObject({
			queueName: defaults.queueName,
			deadLetterQueueName: defaults.deadLetterQueueName,
			graphApiVersion: 'v1.0',
			graphMaxConcurrency: 8,
			graphRequestTimeoutMs: 30_000,
			graphAccessToken: undefined,
			invocationBudgetMs: 420_000,
			maxAttempts: 5,
		});
		expect(settings.graphBaseUrl.origin).toBe('https://graph.microsoft.com');
	});

	it('reads an identity-based storage connection', () => {
		const settings = readSettings({
			AzureWebJobsStorage__queueServiceUri: 'https://acct.queue.core.windows.net',
			AzureWebJobsStorage__clientId: 'client-1',
		});
		expect(settings.storage).toEqual({kind: 'identity', queueServiceUri: 'https://acct.queue.core.windows.net', managedIdentityClientId: 'client-1'});
	});

	it.each([
		[{}, /AzureWebJobsStorage: missing/],
		[{AzureWebJobsStorage: 'UseDevelopmentStorage=true'}, /AzureWebJobsStorage: 'UseDevelopmentStorage=true'/],
		[{AzureWebJobsStorage: 'hello'}, /AzureWebJobsStorage: not a storage connection string/],
		[{AzureWebJobsStorage__queueServiceUri: 'http://acct.queue.core.windows.net'}, /__queueServiceUri: must be https/],
		[{AzureWebJobsStorage: storage, GRAPH_BASE_URL: 'graph.microsoft.com'}, /GRAPH_BASE_URL: 'graph.microsoft.com' is not a URL/],
		[{AzureWebJobsStorage: storage, GRAPH_BASE_URL: 'http://graph.example.com'}, /GRAPH_BASE_URL: .* must be https:\/\//],
		[{AzureWebJobsStorage: storage, GRAPH_BASE_URL: 'https://graph.microsoft.com/v1.0'}, /GRAPH_BASE_URL: .* origin only/],
		[{AzureWebJobsStorage: storage, GRAPH_API_VERSION: 'v2'}, /GRAPH_API_VERSION: 'v2' is not a Graph API version/],
		[{AzureWebJobsStorage: storage, GRAPH_MAX_CONCURRENCY: '0'}, /GRAPH_MAX_CONCURRENCY: '0' must be a whole number from 1 to 256/],
		[{AzureWebJobsStorage: storage, SOD_MAX_ATTEMPTS: '2.5'}, /SOD_MAX_ATTEMPTS/],
		[{AzureWebJobsStorage: storage, SOD_QUEUE: 'Bad_Name'}, /SOD_QUEUE: 'Bad_Name' is not a valid queue name/],
		[{AzureWebJobsStorage: storage, SOD_DEAD_LETTER_QUEUE: 'sod-pairs'}, /SOD_DEAD_LETTER_QUEUE: must differ from SOD_QUEUE/],
		[{AzureWebJobsStorage: storage, SOD_MAX_PAIR_AGE_HOURS: '0'}, /SOD_MAX_PAIR_AGE_HOURS: '0' must be a number of hours from 0.001 to 144/],
		[{AzureWebJobsStorage: storage, SOD_THROTTLE_STATE_CONTAINER: 'Bad_Name'}, /SOD_THROTTLE_STATE_CONTAINER: 'Bad_Name' is not a blob container name/],
	])('fails fast naming the setting: %j', (environment, message) => {
		expect(() => readSettings(environment)).toThrow(SettingsError);
		expect(() => readSettings(environment)).toThrow(message);
	});

	it('never echoes a password given in GRAPH_BASE_URL', () => {
		for (const url of ['https://admin:hunter2-secret@graph.microsoft.com', 'http://admin:hunter2-secret@graph.example.com', 'https://:hunter2-secret@x y']) {
			let message = '';
			try {
				readSettings({AzureWebJobsStorage: storage, GRAPH_BASE_URL: url});
			} catch (error) {
				message = (error as Error).message;
			}

			expect(message).toMatch(/GRAPH_BASE_URL: '.*:\/\/\*\*\*@/);
			expect(message).not.toContain('hunter2');
		}
	});

	it('allows http:// only to a loopback Graph (the simulator)', () => {
		expect(readSettings({AzureWebJobsStorage: storage, GRAPH_BASE_URL: 'http://127.0.0.1:5999'}).graphBaseUrl.origin).toBe('http://127.0.0.1:5999');
		expect(readSettings({AzureWebJobsStorage: storage, GRAPH_BASE_URL: 'https://graph.microsoft.us/'}).graphBaseUrl.origin).toBe('https://graph.microsoft.us');
	});

	it('names every problem at once', () => {
		expect(() => readSettings({GRAPH_API_VERSION: 'v2', GRAPH_MAX_CONCURRENCY: '-1'})).toThrow(
			/AzureWebJobsStorage[\s\S]*GRAPH_API_VERSION[\s\S]*GRAPH_MAX_CONCURRENCY/,
		);
	});
});

describe('the settings table', () => {
	const names = Object.values(settingNames);

	it('is the README\'s two settings tables, row for row (each setting\'s name, meaning and default come from its one entry)', () => {
		const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
		expect(readme).toContain(`\n${settingsTableMarkdown('worker')}\n`);
		expect(readme).toContain(`\n${settingsTableMarkdown('reconcile')}\n`);
		expect(Object.keys(settingTable).length).toBe(names.length);
		// Every default is one the setting's own parser accepts, as an operator would write it.
		for (const entry of Object.values(settingTable) as SettingEntry[]) {
			if (entry.parse && entry.default !== undefined) {
				expect(String(entry.parse(String(entry.default).replace(/\/$/, ''))), entry.name).toBe(String(entry.default));
			}
		}
	});

	it('is documented in the README, every name', () => {
		const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
		for (const name of names) {
			expect(readme, name).toContain(`\`${name}\``);
		}
	});

	it('says that the settings the trigger bindings name (%SOD_QUEUE%, %SOD_RECONCILE_SCHEDULE%) are required', () => {
		// The host resolves binding expressions before the app runs: no default in src/config/settings.ts reaches them.
		const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
		for (const name of [settingNames.queueName, settingNames.reconcileSchedule]) {
			const row = readme.split('\n').find(line => line.startsWith(`| \`${name}\` |`));
			expect(row, name).toMatch(/\| required \(Function\)[^|]*\|$/);
		}
	});

	it('gives a complete local storage connection in local.settings.sample.json (blob, queue and table: timers and the host need them)', () => {
		const sample = JSON.parse(readFileSync(new URL('../../local.settings.sample.json', import.meta.url), 'utf8')) as {Values: Record<string, string>};
		for (const endpoint of ['BlobEndpoint=http://127.0.0.1:10000/', 'QueueEndpoint=http://127.0.0.1:10001/', 'TableEndpoint=http://127.0.0.1:10002/']) {
			expect(sample.Values.AzureWebJobsStorage).toContain(endpoint);
		}
	});

	it('is listed in local.settings.sample.json, every name, with values readSettings accepts', () => {
		const sample = JSON.parse(readFileSync(new URL('../../local.settings.sample.json', import.meta.url), 'utf8')) as {Values: Record<string, string>};
		for (const name of names) {
			expect(Object.keys(sample.Values), name).toContain(name);
		}

		expect(() => readSettings(sample.Values)).not.toThrow();
	});
});

describe('the invocation budget against the host\'s functionTimeout', () => {
	const minutes = (count: number) => count * 60_000;
	it.each([
		['the defaults under host.json\'s 10 min', 420, 30, minutes(10), undefined],
		['the most that fits 10 min', 510, 30, minutes(10), undefined],
		['one second more', 511, 30, minutes(10), 'at most 510 s here'],
		['an hour under 10 min', 3600, 30, minutes(10), 'at most 510 s here'],
		['a long request timeout eats into it', 420, 180, minutes(10), 'at most 360 s here'],
		['no functionTimeout: Consumption\'s 5 min', 420, 30, undefined, 'no functionTimeout, and the Consumption plan\'s default is 300 s'],
		['no limit (-1)', 3600, 30, Number.POSITIVE_INFINITY, undefined],
	])('%s', (_name, budgetSeconds, requestSeconds, timeoutMs, problem) => {
		const found = budgetProblem({invocationBudgetMs: budgetSeconds * 1000, graphRequestTimeoutMs: requestSeconds * 1000}, timeoutMs);
		if (problem === undefined) {
			expect(found).toBeUndefined();
		} else {
			expect(found).toContain(problem);
			expect(found).toMatch(/^- SOD_INVOCATION_BUDGET_SECONDS: \d+ s does not leave time to write dead letters and re-queues/);
		}
	});

	it('reads host.json\'s functionTimeout (10 min), and refuses a budget of an hour at start under the host, naming it', () => {
		expect(readFunctionTimeoutMs()).toBe(minutes(10));
		const sample = JSON.parse(readFileSync(new URL('../../local.settings.sample.json', import.meta.url), 'utf8')) as {Values: Record<string, string>};
		const environment = {...sample.Values, FUNCTIONS_WORKER_RUNTIME: 'node'};
		expect(() => checkSettingsAtStart(environment)).not.toThrow();
		expect(() => checkSettingsAtStart({...environment, [settingNames.invocationBudgetSeconds]: '3600'})).toThrow(
			/sod-sync cannot start: invalid app settings:\n- SOD_INVOCATION_BUDGET_SECONDS: 3600 s does not leave time .*host\.json's functionTimeout is 600 s.*at most 510 s here/,
		);
	});
});
