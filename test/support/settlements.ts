// A ledger settlement for tests: nothing settled unless the test says so.

import type {Settlement} from '../../src/ledger/ledger.js';

export function settlement(fields: Partial<Settlement> & Pick<Settlement, 'messageId' | 'pairs'>): Settlement {
	return {
		correlationId: 'import-1',
		origin: 'import',
		linked: 0,
		alreadyLinked: 0,
		removed: 0,
		alreadyAbsent: 0,
		deadLetter: 0,
		deadLetters: {},
		requeued: 0,
		linkedPairs: [],
		removedPairs: [],
		foundLinked: [],
		foundAbsent: [],
		withoutPreImage: 0,
		settledAt: new Date('2026-12-02T10:00:00Z'),
		...fields,
	};
}
