import {describe, expect, it} from 'vitest';
import {addLinkPath, additionalAccessPath, linkListPath, packageAssignmentsPath, removeLinkPath, targetODataId, transitiveUsersPath} from '../../src/graph/link-paths.js';

const a = 'c0a74b4d-2694-4d5d-a964-1bee4ff0aaf2';
const b = '0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d';
const packages = '/identityGovernance/entitlementManagement/accessPackages';

describe('link paths', () => {
	it('puts each kind of link in its own list on the package', () => {
		expect(linkListPath(a, 'package')).toBe(`${packages}/${a}/incompatibleAccessPackages`);
		expect(linkListPath(a, 'group')).toBe(`${packages}/${a}/incompatibleGroups`);
		expect(addLinkPath({accessPackageId: a, incompatibleAccessPackageId: b})).toBe(`${packages}/${a}/incompatibleAccessPackages/$ref`);
		expect(removeLinkPath({accessPackageId: a, incompatibleGroupId: b})).toBe(`${packages}/${a}/incompatibleGroups/${b}/$ref`);
	});

	it('names the target by its absolute URL on the configured origin and version', () => {
		const origin = new URL('https://graph.microsoft.com/v1.0/');
		expect(targetODataId(origin, 'v1.0', {accessPackageId: a, incompatibleAccessPackageId: b})).toBe(`https://graph.microsoft.com/v1.0${packages}/${b}`);
		expect(targetODataId(origin, 'beta', {accessPackageId: a, incompatibleGroupId: b})).toBe(`https://graph.microsoft.com/beta/groups/${b}`);
	});

	it('uses the assignments collection of the API version', () => {
		expect(packageAssignmentsPath('v1.0', a)).toBe(`/identityGovernance/entitlementManagement/assignments?$filter=accessPackage%2Fid%20eq%20'${a}'&$expand=target`);
		expect(packageAssignmentsPath('beta', a)).toContain('/accessPackageAssignments?');
		expect(additionalAccessPath('beta', a, b)).toContain(`/accessPackageAssignments/additionalAccess(accessPackageId='${a}',incompatibleAccessPackageId='${b}')`);
		expect(transitiveUsersPath(b)).toBe(`/groups/${b}/transitiveMembers/microsoft.graph.user?$select=id`);
	});

	it.each([a.toUpperCase(), `${a}/../../users`, `{${a}}`, ''])('refuses an id that is not a canonical GUID: %j', id => {
		expect(() => linkListPath(id, 'package')).toThrow(TypeError);
		expect(() => removeLinkPath({accessPackageId: a, incompatibleGroupId: id})).toThrow(TypeError);
	});
});
