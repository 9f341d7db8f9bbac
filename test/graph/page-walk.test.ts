import {describe, expect, it} from 'vitest';
import {PageWalk} from '../../src/graph/page-walk.js';

describe('PageWalk', () => {
	it('follows distinct next links and counts the pages read', () => {
		const walk = new PageWalk();
		expect(walk.pages).toBe(1);
		expect(walk.follow('https://graph.example/next?page=2')).toBeUndefined();
		expect(walk.follow('https://graph.example/next?page=3')).toBeUndefined();
		expect(walk.pages).toBe(3);
	});

	it('stops at a next link already followed (a paging loop), naming the page', () => {
		const walk = new PageWalk();
		walk.follow('https://graph.example/next?page=2');
		expect(walk.follow('https://graph.example/next?page=2')).toEqual({
			kind: 'server',
			code: 'RepeatedNextLink',
			message: "Graph's @odata.nextLink after page 2 names a page already read: stopped reading (a paging loop)",
		});
	});

	it('stops after the most pages a collection may have', () => {
		const walk = new PageWalk(3);
		expect(walk.follow('p2')).toBeUndefined();
		expect(walk.follow('p3')).toBeUndefined();
		expect(walk.follow('p4')).toMatchObject({kind: 'server', code: 'TooManyPages', message: 'more than 3 pages: stopped reading (no collection sod-sync reads is that long)'});
	});

	it.each([0, -1, 1.5, Number.NaN])('refuses a page limit of %s', maximum => {
		expect(() => new PageWalk(maximum)).toThrow(TypeError);
	});
});
