// Registration only: the queue trigger hands each pairs message to the worker in src/.

import {app} from '@azure/functions';
import {checkSettingsAtStart, functionNames, readSettings, settingNames} from '../src/config/settings.js';
import {createPairsHandler, type WorkerDependencies} from '../src/worker/pairs-handler.js';
import {openAppStorage} from '../src/queue/app-storage.js';
import {createWorkerDependencies} from '../src/worker/worker-runtime.js';

checkSettingsAtStart(process.env);

// Built on the first message; the settings were checked at load (under the host).
let dependencies: WorkerDependencies | undefined;

app.storageQueue(functionNames.syncPairs, {
	queueName: `%${settingNames.queueName}%`,
	connection: settingNames.storage,
	handler: createPairsHandler(() => {
		if (!dependencies) {
			const settings = readSettings(process.env);
			dependencies = createWorkerDependencies(settings, openAppStorage(settings), process.env);
		}

		return dependencies;
	}),
});
