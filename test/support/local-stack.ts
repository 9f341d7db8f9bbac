// One Azurite per test file, one simulator per test: hooks that start them and stop them (and any CLI child left).

import {afterAll, afterEach, beforeAll} from 'vitest';
import {startAzurite, type RunningAzurite} from '../../src/local/azurite.js';
import {GraphSimulator, type SimulatorOptions} from '../../src/simulator/graph-simulator.js';
import {killChildren} from './cli.js';

export interface LocalStack {
	/** Azurite, started before the file's first test. */
	readonly azurite: RunningAzurite;
	/** Starts this test's simulator; it is closed after the test. */
	startSimulator(options: SimulatorOptions): Promise<GraphSimulator>;
}

export function useLocalStack(options: {blob?: boolean} = {}): LocalStack {
	let azurite: RunningAzurite | undefined;
	let simulator: GraphSimulator | undefined;
	beforeAll(async () => {
		azurite = await startAzurite({blob: options.blob});
	});

	afterAll(async () => {
		await azurite?.stop();
	});

	afterEach(async () => {
		killChildren();
		await simulator?.close();
		simulator = undefined;
	});

	return {
		get azurite() {
			return azurite!;
		},
		async startSimulator(simulatorOptions) {
			simulator = await GraphSimulator.start(simulatorOptions);
			return simulator;
		},
	};
}
