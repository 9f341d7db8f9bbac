// `sod-sync export` against the simulator: a tenant of a few hundred packages and links written as a manifest that
// `reconcile` finds no drift in, and that restores the tenant exactly after it changed; the scopes; what a reviewer
// reads; and sets of mutually exclusive packages in a manifest.

import {describe, expect, it} from 'vitest';
import {readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {rulesOf} from '../../src/compliance/export.js';
import type {ReconcileReport} from '../../src/compliance/reconcile.js';
import {seededRandom} from '../../src/simulator/seeded-random.js';
import {runCli, runInProcess} from '../support/cli.js';
import {useLocalStack} from '../support/local-stack.js';
import {useTemporaryDirectories} from '../support/temporary-directories.js';

const local = useLocalStack({blob: true});

const workDirectory = useTemporaryDirectories('sod-export-');

const guid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

describe('rulesOf', () => {
	it('writes a link both ways once, as symmetric, from the lower id; drops links to packages not named; sorts', () => {
		const [a, b, c, d] = [guid(1), guid(2), guid(3), guid(4)];
		const links = new Map([
			[b, [a, c]],
			[a, [b, d]],
			[c, []],
		]);
		expect(rulesOf(links, new Set([a, b, c]))).toEqual([
			{pair: {accessPackageId: a, incompatibleAccessPackageId: b}, symmetric: true},
			{pair: {accessPackageId: b, incompatibleAccessPackageId: c}, symmetric: false},
		]);
	});
});

describe('sod-sync export', () => {
	it('round trip: a tenant of 300 packages exported, reconciled with no drift, changed, and restored exactly by reconcile --apply --prune', async () => {
		const simulator = await local.startSimulator({packageCount: 300, pageSize: 50, seed: 11});
		const environment = local.environment(simulator);
		const ids = simulator.packageIds;
		const random = seededRandom(5);
		for (let index = 0; index < 600; index++) {
			const a = ids[Math.floor(random() * ids.length)]!;
			const b = ids[Math.floor(random() * ids.length)]!;
			if (a !== b) {
				simulator.link(a, b);
				if (index % 4 === 0) {
					simulator.link(b, a); // Some rules both ways: written once, symmetric.
				}
			}
		}

		const before = simulator.allLinks();
		const directory = await workDirectory();
		const path = join(directory, 'rules.csv');
		const exported = await runInProcess(['export', '--output', path], environment);
		expect(exported.code, exported.stderr).toBe(0);
		const text = await readFile(path, 'utf8');
		const rows = text.trim().split('\n').slice(1).map(line => line.split(','));
		const symmetricRows = rows.filter(row => row[2] === 'true').length;
		expect(symmetricRows).toBeGreaterThan(0);
		// Every link once: a symmetric row stands for two.
		expect(rows.length + symmetricRows).toBe(before.length);
		expect(exported.stderr).toContain(`export: 300 packages in scope, ${rows.length} rules (${symmetricRows} symmetric) from ${before.length} links, written to ${path}`);

		const clean = await runInProcess(['reconcile', path], environment);
		expect(clean.code, clean.stdout + clean.stderr).toBe(0);
		expect(clean.stdout).toContain('no drift');

		// Someone changes the tenant: three links removed, two added.
		const removed = before.slice(0, 3).map(link => link.split('/') as [string, string]);
		for (const [a, b] of removed) {
			simulator.unlink(a, b);
		}

		const added: Array<[string, string]> = [
			[ids[0]!, ids[299]!],
			[ids[150]!, ids[1]!],
		].filter(([a, b]) => !before.includes(`${a}/${b}`)) as Array<[string, string]>;
		for (const [a, b] of added) {
			simulator.link(a, b);
		}

		const drifted = await runInProcess(['reconcile', path, '--json'], environment);
		expect(drifted.code).toBe(3);
		const report = JSON.parse(drifted.stdout) as ReconcileReport;
		expect(report.missing).toHaveLength(3);
		expect(report.extra).toHaveLength(added.length);
		const applied = await runInProcess(['reconcile', path, '--apply', '--prune'], environment);
		expect(applied.code).toBe(3);
		expect((await runCli(['run', '--until-empty'], environment)).code).toBe(0);
		expect(simulator.allLinks()).toEqual(before);
		expect((await runInProcess(['reconcile', path], environment)).code).toBe(0);

		// JSON Lines: the same rules.
		const jsonl = await runInProcess(['export', '--format', 'jsonl'], environment);
		expect(jsonl.code).toBe(0);
		const lines = jsonl.stdout.trim().split('\n').map(line => JSON.parse(line) as {accessPackageId: string; incompatibleAccessPackageId: string; symmetric: boolean});
		expect(lines.map(line => `${line.accessPackageId},${line.incompatibleAccessPackageId},${line.symmetric}`)).toEqual(rows.map(row => row.slice(0, 3).join(',')));
	}, 120_000);

	it('round trip with incompatible groups: exported as group rows, reconciled with no drift, changed, restored by reconcile --apply --prune', async () => {
		const simulator = await local.startSimulator({packageCount: 200, pageSize: 25, seed: 12});
		const environment = local.environment(simulator);
		const ids = simulator.packageIds;
		const groups = Array.from({length: 40}, (_, index) => `00000000-0000-4000-b000-${String(index + 1).padStart(12, '0')}`);
		for (const [index, group] of groups.entries()) {
			simulator.addGroup(group, index === 0 ? '=cmd|"payroll"' : `Group ${index + 1}`);
		}

		const random = seededRandom(6);
		for (let index = 0; index < 300; index++) {
			const [a, b] = [ids[Math.floor(random() * ids.length)]!, ids[Math.floor(random() * ids.length)]!];
			if (a !== b) {
				simulator.link(a, b);
			}

			if (index % 2 === 0) {
				simulator.linkGroup(ids[Math.floor(random() * ids.length)]!, groups[Math.floor(random() * groups.length)]!);
			}
		}

		simulator.linkGroup(ids[1]!, groups[0]!);
		const before = [simulator.allLinks(), simulator.allGroupLinks()];
		const directory = await workDirectory();
		const path = join(directory, 'rules.csv');
		const exported = await runInProcess(['export', '--output', path], environment);
		expect(exported.code, exported.stderr).toBe(0);
		expect(exported.stderr).toContain(`and ${before[1]!.length} group links, written to ${path}`);
		const text = await readFile(path, 'utf8');
		const [header, ...lines] = text.trim().split('\n');
		expect(header).toBe('accessPackageId,incompatibleAccessPackageId,symmetric,accessPackageName,incompatibleAccessPackageName,incompatibleGroupId,incompatibleGroupName');
		const groupRows = lines.map(line => line.split(',')).filter(row => row[1] === '');
		expect(groupRows.map(row => `${row[0]}/${row[5]}`).sort()).toEqual(before[1]);
		// A group's name is Graph's text: written inert for a spreadsheet.
		expect(text).toContain(`,${groups[0]},"'=cmd|""payroll"""`);

		const clean = await runInProcess(['reconcile', path], environment);
		expect(clean.code, clean.stdout + clean.stderr).toBe(0);
		expect(clean.stdout).toMatch(/^scope: \d+ packages and \d+ groups; /);

		// Someone removes two group links, adds one to a group the manifest names, and one to a group it does not.
		const [first, second] = before[1]!.map(link => link.split('/') as [string, string]);
		simulator.unlinkGroup(...first!);
		simulator.unlinkGroup(...second!);
		const named = new Set(groupRows.map(row => row[5]));
		const namedGroup = groups.find(group => named.has(group))!;
		const otherGroup = groups.find(group => !named.has(group)) ?? '00000000-0000-4000-b000-000000000999';
		simulator.addGroup(otherGroup);
		const target = ids.find(id => !before[1]!.includes(`${id}/${namedGroup}`))!;
		simulator.linkGroup(target, namedGroup);
		simulator.linkGroup(ids[0]!, otherGroup);
		const drifted = await runInProcess(['reconcile', path, '--json'], environment);
		expect(drifted.code).toBe(3);
		const report = JSON.parse(drifted.stdout) as ReconcileReport;
		const asGroupPair = ([accessPackageId, incompatibleGroupId]: [string, string]) => ({accessPackageId, incompatibleGroupId});
		expect(report.missing).toEqual([first!, second!].map(asGroupPair));
		expect(report.extra).toEqual([{accessPackageId: target, incompatibleGroupId: namedGroup}]);
		expect(report.outOfScope).toEqual([{accessPackageId: ids[0], incompatibleGroupId: otherGroup}]);
		const described = await runInProcess(['reconcile', path], environment);
		expect(described.stdout).toContain(`  ${target} -> group ${namedGroup}`);

		expect((await runInProcess(['reconcile', path, '--apply', '--prune'], environment)).code).toBe(3);
		expect((await runCli(['run', '--until-empty'], environment)).code).toBe(0);
		// Restored exactly, but for the link to a group outside the manifest: reported, never pruned.
		expect([simulator.allLinks(), simulator.allGroupLinks()]).toEqual([before[0], [...before[1]!, `${ids[0]}/${otherGroup}`].sort()]);
		expect((await runInProcess(['reconcile', path], environment)).code).toBe(0);

		// JSON Lines: group rules without symmetric, with the group's name.
		const jsonl = await runInProcess(['export', '--format', 'jsonl'], environment);
		const groupLines = jsonl.stdout.trim().split('\n').map(line => JSON.parse(line) as Record<string, unknown>).filter(line => line.incompatibleGroupId !== undefined);
		expect(groupLines).toContainEqual({accessPackageId: ids[0], incompatibleGroupId: otherGroup, accessPackageName: expect.any(String), incompatibleGroupName: expect.any(String)});
	}, 120_000);

	it('scopes to a catalog or a list of packages, and takes in every link among the packages the export names', async () => {
		const simulator = await local.startSimulator({packageCount: 0});
		const environment = local.environment(simulator);
		const finance = guid(900);
		const [a, b, c, x, y] = [guid(1), guid(2), guid(3), guid(10), guid(11)];
		for (const id of [a, b, c]) {
			simulator.addPackage(id, `Finance ${id.slice(-1)}`, finance);
		}

		simulator.addPackage(x, 'Outside X', guid(901));
		simulator.addPackage(y, 'Outside Y', guid(901));
		simulator.link(a, b);
		simulator.link(b, c);
		simulator.link(c, x); // To a package outside the catalog: a rule, and x is then named too.
		simulator.link(x, a); // So x's link back into the named packages is a rule as well...
		simulator.link(x, y); // ...and its link to a package nobody names is not.
		const byCatalog = await runInProcess(['export', '--scope', `catalog:${finance}`], environment);
		expect(byCatalog.code, byCatalog.stderr).toBe(0);
		const pairsOf = (csv: string) => csv.trim().split('\n').slice(1).map(line => line.split(',').slice(0, 2).join('->'));
		expect(pairsOf(byCatalog.stdout)).toEqual([`${a}->${b}`, `${b}->${c}`, `${c}->${x}`, `${x}->${a}`]);
		expect(byCatalog.stderr).toContain('export: 3 packages in scope');
		const directory = await workDirectory();
		const manifestPath = join(directory, 'finance.csv');
		await writeFile(manifestPath, byCatalog.stdout);
		expect((await runInProcess(['reconcile', manifestPath], environment)).code).toBe(0);

		const list = join(directory, 'packages.txt');
		await writeFile(list, `# the two we care about\n${a}\n\n${c.toUpperCase()}\n`);
		const byList = await runInProcess(['export', '--scope', `packages:${list}`], environment);
		expect(byList.code, byList.stderr).toBe(0);
		// a and c link to b and x: those are named too, so b's link to c is a rule (reconcile would read b and call it extra).
		expect(pairsOf(byList.stdout)).toEqual([`${a}->${b}`, `${b}->${c}`, `${c}->${x}`, `${x}->${a}`]);
		await writeFile(manifestPath, byList.stdout);
		expect((await runInProcess(['reconcile', manifestPath], environment)).code).toBe(0);

		await writeFile(list, `${a}\nnot-a-guid\n`);
		const invalid = await runInProcess(['export', '--scope', `packages:${list}`], environment);
		expect(invalid.code).toBe(2);
		expect(invalid.stderr).toContain(`${list}: line 2: "not-a-guid" is not an access package id (a GUID)`);
		expect((await runInProcess(['export', '--scope', 'catalog:nope'], environment)).code).toBe(2);
	});

	it('writes display names for a reviewer, quoted, and never as a formula a spreadsheet would run', async () => {
		const simulator = await local.startSimulator({packageCount: 0});
		const environment = local.environment(simulator);
		simulator.addPackage(guid(1), '=HYPERLINK("http://evil.example","click")');
		simulator.addPackage(guid(2), 'Payroll, "approvers"');
		simulator.link(guid(1), guid(2));
		const exported = await runInProcess(['export'], environment);
		expect(exported.stdout).toBe(
			`accessPackageId,incompatibleAccessPackageId,symmetric,accessPackageName,incompatibleAccessPackageName\n${guid(1)},${guid(2)},false,"'=HYPERLINK(""http://evil.example"",""click"")","Payroll, ""approvers"""\n`,
		);
		// The reader takes the ids and ignores the names.
		const directory = await workDirectory();
		await writeFile(join(directory, 'named.csv'), exported.stdout);
		expect((await runInProcess(['reconcile', join(directory, 'named.csv')], environment)).code).toBe(0);
	});

	it('writes nothing, and exits 1 naming the package, when a package cannot be read', async () => {
		const simulator = await local.startSimulator({packageCount: 3});
		const environment = {...local.environment(simulator), SOD_NOT_FOUND_RETRIES: '0'};
		const [a] = simulator.packageIds as [string];
		const gone = guid(404);
		const directory = await workDirectory();
		const list = join(directory, 'packages.txt');
		await writeFile(list, `${a}\n${gone}\n`);
		const path = join(directory, 'rules.csv');
		const exported = await runInProcess(['export', '--scope', `packages:${list}`, '--output', path], environment);
		expect(exported.code).toBe(1);
		expect(exported.stderr).toContain(`could not read ${gone}'s incompatible packages: 404`);
		expect(exported.stderr).toContain('nothing was written');
		await expect(readFile(path)).rejects.toThrow(/ENOENT/);
	});
});

describe('sets in a manifest', () => {
	it('a 5-package set reconciles to 20 links, the drift report naming the set; CSV and JSON Lines alike', async () => {
		const simulator = await local.startSimulator({packageCount: 6});
		const environment = local.environment(simulator);
		const ids = simulator.packageIds;
		const members = ids.slice(0, 5);
		simulator.link(members[0]!, members[1]!); // One of the twenty is there already.
		const directory = await workDirectory();
		const jsonl = join(directory, 'sets.jsonl');
		await writeFile(jsonl, `${JSON.stringify({set: members, name: 'finance duties'})}\n`);
		const report = await runInProcess(['reconcile', jsonl], environment);
		expect(report.code).toBe(3);
		expect(report.stdout).toContain('scope: 5 packages; 20 links desired, 1 present');
		expect(report.stdout).toContain('"finance duties" (line 1): 5 packages, 20 links, 19 missing');
		expect(report.stdout).toMatch(new RegExp(`${members[1]} -> ${members[0]}  \\(set "finance duties"\\)`));
		expect((await runInProcess(['reconcile', jsonl, '--apply'], environment)).code).toBe(3);
		expect((await runCli(['run', '--until-empty'], environment)).code).toBe(0);
		expect(simulator.allLinks()).toHaveLength(20);
		const clean = await runInProcess(['reconcile', jsonl, '--json'], environment);
		expect(clean.code).toBe(0);
		expect((JSON.parse(clean.stdout) as ReconcileReport).sets).toEqual([{name: 'finance duties', line: 1, members: 5, links: 20, missing: 0}]);

		// The same set in CSV: a set column, one row per member.
		const csv = join(directory, 'sets.csv');
		await writeFile(csv, `accessPackageId,incompatibleAccessPackageId,set\n${members.map(id => `${id},,finance duties`).join('\n')}\n`);
		const fromCsv = await runInProcess(['reconcile', csv], environment);
		expect(fromCsv.code, fromCsv.stdout).toBe(0);
		expect(fromCsv.stdout).toContain('"finance duties" (line 2): 5 packages, 20 links, none missing');
	});

	it('refuses a set row in a file to enqueue, and a set that is not one, naming the line', async () => {
		const simulator = await local.startSimulator({packageCount: 3});
		const environment = local.environment(simulator);
		const [a, b] = simulator.packageIds as [string, string];
		const enqueued = await runInProcess(['enqueue', '-', '--format', 'jsonl'], environment, `${JSON.stringify({set: [a, b]})}\n`);
		expect(enqueued.code).toBe(2);
		expect(enqueued.stderr).toContain('line 1: a set is a manifest rule (sod-sync reconcile reads it and enqueues its links); enqueue takes pairs');
		const directory = await workDirectory();
		const path = join(directory, 'bad.csv');
		await writeFile(path, `accessPackageId,incompatibleAccessPackageId,set\n${a},,solo\n${a},${b},mixed\n`);
		const refused = await runInProcess(['reconcile', path], environment);
		expect(refused.code).toBe(2);
		expect(refused.stderr).toContain('line 2: set "solo" names one package: a set names at least two');
		expect(refused.stderr).toContain('line 3: a row of set "mixed" names one member in accessPackageId and leaves the other columns (incompatibleAccessPackageId, incompatibleGroupId, symmetric) empty');
	});
});
