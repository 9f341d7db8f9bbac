// Registration only: the queue trigger hands each pairs message to the worker in src/.

import {app} from '@azure/functions';
import {checkSettingsAtStart, functionNames, readSettings, settingNames} from '../src/config/settings.js';
import {createPairsHandler, type WorkerDependencies} from '../src/worker/pairs-handler.js';
import {appQueues, openAppStorage} from '../src/queue/app-storage.js';
import {createWorkerDependencies} from '../src/worker/worker-runtime.js';
import {SodMetrics} from '../src/telemetry/metrics.js';
import {startTelemetry} from '../src/telemetry/telemetry.js';

checkSettingsAtStart(process.env);

// Metrics when the app settings ask for them (OTEL_EXPORTER_OTLP_ENDPOINT), started as the app loads. A setting the
// exporter cannot use is logged and leaves metrics off: it never stops the pairs.
const telemetry = startTelemetry(process.env).catch((error: unknown) => {
	console.error(`sod-sync: metrics are off: ${(error as Error).message}`);
	return undefined;
});

// When the worker is told to stop, what was recorded since the last export goes out first.
app.hook.appTerminate(async () => {
	await (await telemetry)?.shutdown();
});

// Built once, on the first message; the settings were checked at load (under the host).
let handler: Promise<ReturnType<typeof createPairsHandler>> | undefined;

async function buildHandler(): Promise<ReturnType<typeof createPairsHandler>> {
	const metrics = (await telemetry) ? new SodMetrics() : undefined;
	const settings = readSettings(process.env);
	const storage = openAppStorage(settings);
	const dependencies: WorkerDependencies = createWorkerDependencies(settings, storage, process.env, {
		onSummary: summary => metrics?.recordSummary(summary),
	});
	metrics?.observe(dependencies.engine);
	metrics?.observeQueues(appQueues(storage, settings));
	return createPairsHandler(dependencies);
}

app.storageQueue(functionNames.syncPairs, {
	queueName: `%${settingNames.queueName}%`,
	connection: settingNames.storage,
	async handler(item, context) {
		handler ??= buildHandler().catch((error: unknown) => {
			handler = undefined; // The next message tries again.
			throw error;
		});
		await (await handler)(item, context);
	},
});
