// One source of truth: the deployment template sets exactly the settings src/settings.ts knows, with the queue and
// container names it defaults to. (The template is not compiled here: no Bicep compiler; its text is read.)

import {readFileSync} from 'node:fs';
import {describe, expect, it} from 'vitest';
import {defaults, platformSettingNames, readReconcileSettings, readSettings, settingNames} from '../../src/settings.js';

const template = readFileSync(new URL('../../infra/app.bicep', import.meta.url), 'utf8');
const appSettings = [...template.matchAll(/\{name: '([^']+)', value: ([^}]+)\}/g)].map(([, name, value]) => ({name: name!, value: value!.trim()}));
const literal = (value: string) => (/^'[^'$]*'$/.test(value) ? value.slice(1, -1) : undefined);
const variable = (name: string) => new RegExp(`^var ${name} = '([^']*)'`, 'm').exec(template)?.[1];

describe('infra/app.bicep', () => {
	it('sets only settings that src/settings.ts knows (its own or the platform\'s), each once', () => {
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

	it('names the queues and containers src/settings.ts defaults to', () => {
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
