// The workbook and alert rules (infra/monitoring.bicep, infra/workbook.json) query what the app emits: every metric
// name and attribute they read is one src/telemetry/metrics.ts exports, every metric shows in the workbook, the
// imports table parses the worker's own log line, and what costs money is off by default. (Read, not run: there is
// neither a Bicep compiler nor a Kusto engine here; the first `azd provision` with alertsEnabled is their real check.)

import {readFileSync} from 'node:fs';
import {describe, expect, it} from 'vitest';
import {metricAttributes, metricNames} from '../../src/telemetry/metrics.js';
import {describeSummary, type MessageSummary} from '../../src/worker/pairs-handler.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const monitoring = read('infra/monitoring.bicep');
const app = read('infra/app.bicep');
const main = read('infra/main.bicep');
const workbookText = read('infra/workbook.json');

interface WorkbookItem {
	type: number;
	name: string;
	content: {query?: string; title?: string; visualization?: string; timeContextFromParameter?: string; parameters?: Array<{name: string}>};
}

const workbook = JSON.parse(workbookText) as {version: string; items: WorkbookItem[]; fallbackResourceIds: string[]};
const workbookQueries = workbook.items.filter(item => item.type === 3).map(item => ({name: item.name, query: item.content.query!}));

/** The alert rules' queries, as Bicep strings (`\'` unescaped; `${...}` left as written). */
const alertQueries = [...monitoring.matchAll(/^ {4}name: '([^']+)'[\s\S]*?^ {4}query: '((?:[^'\\]|\\.)*)'$/gm)].map(([, name, query]) => ({name: name!, query: query!.replaceAll("\\'", "'")}));

const emitted = new Map<string, readonly string[]>(Object.entries(metricNames).map(([key, name]) => [name, metricAttributes[key as keyof typeof metricNames]]));

/** The metric names a KQL query filters on: `name == '...'` and `name in ('...', ...)`. */
function metricsQueried(query: string): string[] {
	const names = [...query.matchAll(/\bname == '([^']+)'/g)].map(([, name]) => name!);
	for (const [, list] of query.matchAll(/\bname in \(([^)]*)\)/g)) {
		names.push(...[...list!.matchAll(/'([^']+)'/g)].map(([, name]) => name!));
	}

	return names;
}

const attributesQueried = (query: string) => [...query.matchAll(/customDimensions\.(\w+)/g)].map(([, attribute]) => attribute!);

describe('infra/workbook.json', () => {
	it('is a workbook whose queries all follow its time range', () => {
		expect(workbook.version).toBe('Notebook/1.0');
		expect(workbookQueries.length).toBeGreaterThanOrEqual(8);
		for (const item of workbook.items.filter(each => each.type === 3)) {
			expect(item.content.timeContextFromParameter, item.name).toBe('TimeRange');
			expect(item.content.query, item.name).toContain('| where timestamp {TimeRange}');
		}

		expect(workbook.items.find(item => item.type === 9)?.content.parameters?.map(parameter => parameter.name)).toEqual(['TimeRange']);
		// Opened on its own, it falls back to the app's Application Insights, which the template writes in.
		expect(workbook.fallbackResourceIds).toEqual(['{application-insights-id}']);
		expect(monitoring).toContain("replace(loadTextContent('workbook.json'), '{application-insights-id}', insightsId)");
	});

	it('shows every metric the app emits, and only those', () => {
		const shown = new Set(workbookQueries.flatMap(({query}) => metricsQueried(query)));
		expect([...shown].filter(name => !emitted.has(name))).toEqual([]);
		expect([...emitted.keys()].filter(name => !shown.has(name))).toEqual([]);
	});

	it('shows throughput, outcomes, dead letters by reason, pace, the 429 share, pending and imports', () => {
		expect(workbookQueries.map(({name}) => name)).toEqual(
			expect.arrayContaining(['throughput', 'outcomes', 'dead-letters', 'pace', 'throttled-share', 'pending', 'imports']),
		);
		const query = (name: string) => workbookQueries.find(each => each.name === name)!.query;
		expect(query('dead-letters')).toMatch(/tostring\(customDimensions\.outcome\) == 'dead-letter'[\s\S]*customDimensions\.reason/);
		expect(query('throttled-share')).toContain("status == '429'");
		expect(query('pending')).toContain(metricNames.queueMessages);
	});

	it('reads the imports table from the worker\'s log line, outcome by outcome', () => {
		const summary: MessageSummary = {
			messageId: 'm-1',
			correlationId: 'import-42; second half',
			attempts: 2,
			pairs: 31,
			outcomes: {linked: 18, 'already-linked': 5, removed: 0, 'already-absent': 0, 'dead-letter': 3, requeued: 5},
			// The group rules' share is printed after the totals: the extracts must still read the totals.
			groupOutcomes: {linked: 4, 'already-linked': 0, removed: 0, 'already-absent': 0, 'dead-letter': 1, requeued: 2},
			deadLetters: {'not-found': 2, 'invalid-pair': 1},
			groupDeadLetters: {'not-found': 1},
			requeueDelaySeconds: 30,
			durationMs: 812,
			ageMs: 0,
		};
		const line = describeSummary(summary);
		const imports = workbookQueries.find(({name}) => name === 'imports')!.query;
		expect(imports).toContain("where message startswith 'sod-sync message '");
		expect(line.startsWith('sod-sync message ')).toBe(true);
		// Kusto's extract(@'regex', 1, message): the same regex in JavaScript (RE2 and JavaScript agree on these).
		const extracted = Object.fromEntries(
			[...imports.matchAll(/(?:(\w+) = )?(?:toint\()?extract\(@'([^']+)', 1, message\)/g)].map(([, column, pattern]) => [column ?? 'correlation', new RegExp(pattern!).exec(line)?.[1]]),
		);
		expect(extracted).toEqual({
			correlation: 'import-42; second half',
			linked: '18',
			alreadyLinked: '5',
			removed: undefined,
			alreadyAbsent: undefined,
			deadLetter: '3',
			requeued: '5',
		});
	});
});

describe('infra/monitoring.bicep', () => {
	it('alerts on dead letters, pairs waiting past half their age limit, and no progress while pairs are pending', () => {
		expect(alertQueries.map(({name}) => name)).toEqual(['dead-letters', 'old-pairs', 'no-progress']);
		const query = (name: string) => alertQueries.find(each => each.name === name)!.query;
		expect(query('dead-letters')).toMatch(/customDimensions\.outcome\) == 'dead-letter'[\s\S]*> \$\{deadLetterAlertThreshold\}$/);
		expect(query('old-pairs')).toContain(metricNames.messageAge);
		expect(query('old-pairs')).toMatch(/> todouble\('\$\{maxPairAgeHours\}'\) \* 3600 \/ 2$/);
		expect(query('no-progress')).toMatch(/customDimensions\.outcome\) != 'requeued'/);
		expect(query('no-progress')).toMatch(/customDimensions\.queue\) == 'pairs'/);
		expect(monitoring).toMatch(/name: 'no-progress'[\s\S]*?windowSize: 'PT30M'/);
	});

	it('queries only metrics and attributes the app emits', () => {
		for (const {name, query} of [...alertQueries, ...workbookQueries]) {
			const metrics = metricsQueried(query);
			if (name === 'imports') {
				expect(metrics).toEqual([]);
				continue;
			}

			expect(metrics.length, name).toBeGreaterThan(0);
			expect(metrics.filter(metric => !emitted.has(metric)), name).toEqual([]);
			const attributes = new Set(metrics.flatMap(metric => emitted.get(metric) ?? []));
			expect(attributesQueried(query).filter(attribute => !attributes.has(attribute)), name).toEqual([]);
			for (const [open, close] of [
				['(', ')'],
				['{', '}'],
			] as const) {
				expect(query.split(open).length, `${name}: ${open}${close}`).toBe(query.split(close).length);
			}

			expect(query.split("'").length % 2, `${name}: quotes`).toBe(1);
		}
	});

	it('reads each kind of metric by the column the exporter fills: counters valueSum, gauges value, the histogram valueMax', () => {
		for (const {name, query} of [...alertQueries, ...workbookQueries]) {
			const metrics = metricsQueried(query);
			expect(query, name).not.toMatch(/valueMin|valueCount/);
			if (/valueMax/.test(query)) {
				expect(metrics, name).toEqual([metricNames.messageAge]);
			}

			if (metrics.every(metric => [metricNames.pace, metricNames.instances, metricNames.queueMessages].includes(metric as never)) && metrics.length > 0) {
				expect(query, name).toMatch(/\b(?:max|min|maxif)\(value[,)]/);
			}
		}
	});

	it('creates the alert rules only when asked (they are billed), the workbook unless asked not to, e-mail only to an address given', () => {
		expect(main).toMatch(/\nparam alertsEnabled bool = false\n/);
		expect(main).toMatch(/\nparam workbookEnabled bool = true\n/);
		expect(main).toMatch(/\nparam alertEmail string = ''\n/);
		expect(monitoring).toMatch(/resource alertRules '[^']+' = \[for alert in alerts: if \(alertsEnabled\) \{/);
		expect(monitoring).toMatch(/resource workbook '[^']+' = if \(workbookEnabled\) \{/);
		expect(monitoring).toMatch(/resource actionGroup '[^']+' = if \(alertsEnabled && !empty\(alertEmail\)\) \{/);
		expect(monitoring).toContain('scopes: [insightsId]');
	});

	it('receives every parameter from main.bicep through app.bicep', () => {
		const parameters = ['workbookEnabled', 'alertsEnabled', 'alertEmail', 'deadLetterAlertThreshold', 'maxPairAgeHours'];
		const moduleBlock = /module monitoring 'monitoring.bicep' = \{[\s\S]*?\n\}/.exec(app)?.[0] ?? '';
		for (const parameter of parameters) {
			expect(monitoring, parameter).toMatch(new RegExp(`^param ${parameter} `, 'm'));
			expect(moduleBlock, parameter).toContain(`${parameter}: ${parameter}`);
			expect(app, parameter).toMatch(new RegExp(`^param ${parameter} `, 'm'));
			expect(main, parameter).toMatch(new RegExp(`^param ${parameter} `, 'm'));
		}

		expect(moduleBlock).toContain('insightsId: insights.id');
	});
});
