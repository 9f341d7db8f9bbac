// Registration only: on the SOD_RECONCILE_SCHEDULE timer, reconcile the manifest blob (src/compliance).
// To switch it off, set the app setting AzureWebJobs.reconcile-schedule.Disabled=true.

import {app} from '@azure/functions';
import {createReconcileTimerHandler, manifestBlobReader, type ReconcileTimerDependencies} from '../src/compliance/reconcile-timer.js';
import {readQueueHostConfig} from '../src/host-config.js';
import {createQueueServiceClient, QueueSender} from '../src/queue/storage-queue.js';
import {readReconcileSettings, readSettings, settingNames} from '../src/settings.js';
import {sharedLinkEngine} from '../src/worker/worker-runtime.js';

let dependencies: ReconcileTimerDependencies | undefined;

app.timer('reconcile-schedule', {
	schedule: `%${settingNames.reconcileSchedule}%`,
	handler: createReconcileTimerHandler(() => {
		if (!dependencies) {
			const settings = readSettings(process.env);
			const reconcile = readReconcileSettings(process.env);
			const encoding = readQueueHostConfig().messageEncoding;
			dependencies = {
				engine: sharedLinkEngine(settings, process.env),
				settings: reconcile,
				readManifestText: manifestBlobReader(settings.storage, reconcile.manifestContainer, reconcile.manifestBlob),
				pairsQueue: new QueueSender(createQueueServiceClient(settings.storage).getQueueClient(settings.queueName), encoding),
				encoding,
				invocationBudgetMs: settings.invocationBudgetMs,
			};
		}

		return dependencies;
	}),
});
