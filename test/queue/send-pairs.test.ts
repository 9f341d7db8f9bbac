import {describe, expect, it} from 'vitest';
import {parseMessage} from '../../src/message.js';
import {sendPairs} from '../../src/queue/send-pairs.js';

describe('sendPairs', () => {
	it('packs pairs into as few messages as fit the queue after encoding, each with the envelope, every pair once', async () => {
		const sent: string[] = [];
		const pairs = Array.from({length: 1500}, (_, index) => ({
			accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
			incompatibleAccessPackageId: `00000000-0000-4000-9000-${String(index).padStart(12, '0')}`,
		}));
		const count = await sendPairs({send: async text => void sent.push(text)}, pairs, {action: 'remove', correlationId: 'c-1', attempt: 0}, 'base64');
		expect(count).toBe(sent.length);
		expect(sent.length).toBe(4);
		const read = sent.map(text => parseMessage(text));
		expect(read.every(message => message.kind === 'pairs' && message.action === 'remove' && message.correlationId === 'c-1')).toBe(true);
		expect(read.flatMap(message => (message.kind === 'pairs' ? message.pairs : []))).toEqual(pairs);
		expect(Math.max(...sent.map(text => Math.ceil(Buffer.byteLength(text) / 3) * 4))).toBeLessThanOrEqual(64 * 1024);
	});

	it('rejects with the first failure', async () => {
		const pair = {accessPackageId: '00000000-0000-4000-8000-000000000001', incompatibleAccessPackageId: '00000000-0000-4000-8000-000000000002'};
		await expect(sendPairs({send: async () => Promise.reject(new Error('queue down'))}, [pair], {attempt: 0}, 'none')).rejects.toThrow('queue down');
	});
});
