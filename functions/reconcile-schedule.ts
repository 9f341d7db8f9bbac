// Registration only: on the SOD_RECONCILE_SCHEDULE timer, reconcile the manifest blob (src/compliance).
// To switch it off, set the app setting AzureWebJobs.reconcileSchedule.Disabled=true.

import {app} from '@azure/functions';
import {createReconcileTimerHandler, reconcileTimerDependencies, type ReconcileTimerDependencies} from '../src/compliance/reconcile-timer.js';
import {checkSettingsAtStart, functionNames, settingNames} from '../src/config/settings.js';

checkSettingsAtStart(process.env);

let dependencies: ReconcileTimerDependencies | undefined;

app.timer(functionNames.reconcileSchedule, {
	schedule: `%${settingNames.reconcileSchedule}%`,
	handler: createReconcileTimerHandler(() => {
		dependencies ??= reconcileTimerDependencies(process.env);
		return dependencies;
	}),
});
