// Registration only: the queue trigger hands each pairs message to the worker in src/.

import {app} from '@azure/functions';
import {readQueueHostConfig} from '../src/host-config.js';
import {checkSettingsAtStart, readSettings, settingNames} from '../src/settings.js';
import {createPairsHandler, type WorkerDependencies} from '../src/worker/pairs-handler.js';
import {createWorkerDependencies} from '../src/worker/worker-runtime.js';

checkSettingsAtStart(process.env);

// Built on the first message; the settings were checked at load (under the host).
let dependencies: WorkerDependencies | undefined;

app.storageQueue('sync-pairs', {
	queueName: `%${settingNames.queueName}%`,
	connection: settingNames.storage,
	handler: createPairsHandler(() => {
		dependencies ??= createWorkerDependencies(readSettings(process.env), readQueueHostConfig(), process.env);
		return dependencies;
	}),
});
