import {describe, expect, it} from 'vitest';
import {parseMessage} from '../../src/message/message.js';
import {sendPairRows, sendPairs} from '../../src/queue/send-pairs.js';

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

describe('sendPairRows', () => {
	const pair = (index: number) => ({
		accessPackageId: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
		incompatibleAccessPackageId: `00000000-0000-4000-9000-${String(index).padStart(12, '0')}`,
	});

	it('sends every valid row once (symmetric rows both ways), at most 16 messages at a time, without reading ahead of the sends', async () => {
		let active = 0;
		let peak = 0;
		let read = 0;
		let readAheadPeak = 0;
		const sent: string[] = [];
		const sink = {
			async send(text: string) {
				active++;
				peak = Math.max(peak, active);
				await new Promise(resolve => setTimeout(resolve, 2));
				sent.push(text);
				active--;
			},
		};
		async function* rows() {
			for (let index = 0; index < 20_000; index++) {
				read++;
				readAheadPeak = Math.max(readAheadPeak, read - sent.length * 400);
				yield index % 1000 === 0 ? {kind: 'invalid' as const, line: index + 1, reason: 'bad'} : {kind: 'pair' as const, line: index + 1, pair: pair(index), symmetric: index === 1};
			}
		}

		const result = await sendPairRows(rows(), sink, {action: 'add', attempt: 0}, 'base64');
		expect(result.failure).toBeUndefined();
		expect(result.messages).toBe(sent.length);
		const pairs = sent.flatMap(text => {
			const message = parseMessage(text);
			return message.kind === 'pairs' ? message.pairs : [];
		});
		expect(pairs).toHaveLength(20_000 - 20 + 1);
		expect(result.pairs).toBe(pairs.length);
		expect(peak).toBeLessThanOrEqual(16);
		// Messages hold ~480 pairs: reading never got more than ~33 messages' worth (16 running, 16 waiting) ahead.
		expect(readAheadPeak).toBeLessThan(34 * 480);
	});
});
