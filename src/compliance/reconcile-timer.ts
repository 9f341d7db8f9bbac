// The scheduled reconcile: reads the manifest from blob storage and runs the same reconcile as `sod-sync reconcile`,
// logging the drift summary. With SOD_RECONCILE_APPLY (and _PRUNE) it enqueues the fix for the worker.

import {Readable} from 'node:stream';
import type {InvocationContext, Timer} from '@azure/functions';
import type {LinkEngine} from '../engine/link-engine.js';
import type {MessageEncoding} from '../message/message.js';
import {formatFromPath} from '../pair/pair-file.js';
import {sendPairs} from '../queue/send-pairs.js';
import type {MessageSink} from '../queue/storage-queue.js';
import {readReconcileSettings, readSettings, type Environment, type ReconcileSettings, type StorageConnection} from '../config/settings.js';
import {sharedLinkEngine} from '../worker/worker-runtime.js';
import {createBlobServiceClient} from '../storage/blob-service.js';
import {ManifestTooLargeError, maximumManifestRows, readManifest} from './manifest.js';

/** A manifest blob larger than this is not downloaded: `maximumManifestRows` rows of up to 256 bytes each. */
export const maximumManifestBytes = maximumManifestRows * 256;
import {describeDriftSummary, hasDrift, readConcurrencyFor, reconcile, type ReconcileReport} from './reconcile.js';
import {openAppStorage} from '../queue/app-storage.js';
import {printable} from '../text/untrusted-text.js';
import {ImportRecorder, RecordedEnqueue} from '../ledger/import-recorder.js';
import type {LinkAction, Pair} from '../pair/pair.js';

export interface ReconcileTimerDependencies {
	engine: LinkEngine;
	settings: ReconcileSettings;
	/** Returns the manifest's text. */
	readManifestText: () => Promise<string>;
	pairsQueue: MessageSink;
	encoding: MessageEncoding;
	invocationBudgetMs: number;
	/** Package reads in progress at once (`readConcurrencyFor`). */
	readConcurrency: number;
	/** Records what --apply enqueues as an import in the ledger (none: not recorded). */
	startImport?: (correlationId: string, source: string, warn: (message: string) => void) => Promise<ImportRecorder>;
	onReport?: (report: ReconcileReport) => void;
}

export function createReconcileTimerHandler(
	dependencies: ReconcileTimerDependencies | (() => ReconcileTimerDependencies),
): (timer: Timer, context: InvocationContext) => Promise<void> {
	return async (_timer, context) => {
		const resolved = typeof dependencies === 'function' ? dependencies() : dependencies;
		const {settings} = resolved;
		const text = await resolved.readManifestText();
		const where = `${settings.manifestContainer}/${settings.manifestBlob}`;
		const manifest = await readManifest(Readable.from([text]), formatFromPath(settings.manifestBlob)).catch((error: unknown) => {
			throw error instanceof ManifestTooLargeError ? new Error(`${where}: ${error.message}; nothing reconciled`) : error;
		});
		if (manifest.errors.length > 0) {
			// Nothing runs on a broken manifest: a half-read desired state would report (and prune) the wrong drift.
			throw new Error(`${where}: ${manifest.errors.length} invalid rows, nothing reconciled: ${manifest.errors.slice(0, 20).map(error => `line ${error.line}: ${error.error}`).join('; ')}`);
		}

		const correlationId = `reconcile-${context.invocationId}`;
		const send = async (pairs: readonly Pair[], action: LinkAction) => sendPairs(resolved.pairsQueue, pairs, {action, correlationId, attempt: 0}, resolved.encoding);
		const startImport = resolved.startImport;
		const recorded = startImport ? new RecordedEnqueue(async () => startImport(correlationId, `scheduled reconcile of ${where}`, message => context.warn(message)), send) : undefined;
		let report: ReconcileReport;
		try {
			report = await reconcile({
				engine: resolved.engine,
				rules: manifest.rules,
				sets: manifest.sets,
				scope: settings.scope,
				apply: settings.apply,
				prune: settings.prune,
				enqueue: recorded?.enqueue ?? send,
				deadline: Date.now() + resolved.invocationBudgetMs,
				readConcurrency: resolved.readConcurrency,
			});
		} catch (error) {
			await recorded?.finish(true);
			throw error;
		}

		await recorded?.finish(false);
		const line = `${describeDriftSummary(report)} (${where}${settings.apply ? '' : ', report only'})`;
		if (report.readFailures.length > 0) {
			context.warn(`${line}; unreadable: ${report.readFailures.map(item => `${item.accessPackageId} (${item.failure.status ?? printable(item.failure.code ?? '?', 100)})`).join(', ')}`);
		} else if (hasDrift(report)) {
			context.warn(line);
		} else {
			context.log(line);
		}

		resolved.onReport?.(report);
	};
}

/** The timer Function's dependencies, from the app settings (the process's environment under the Functions host). */
export function reconcileTimerDependencies(environment: Environment): ReconcileTimerDependencies {
	const settings = readSettings(environment);
	const reconcile = readReconcileSettings(environment);
	const storage = openAppStorage(settings);
	return {
		engine: sharedLinkEngine(settings, environment),
		settings: reconcile,
		readManifestText: manifestBlobReader(settings.storage, reconcile.manifestContainer, reconcile.manifestBlob),
		pairsQueue: storage.pairs,
		encoding: storage.encoding,
		invocationBudgetMs: settings.invocationBudgetMs,
		readConcurrency: readConcurrencyFor(settings),
		startImport: async (correlationId, source, warn) => ImportRecorder.start(settings, {correlationId, source, invalidRows: 0}, warn),
	};
}

/** Reads a blob's text with the app's storage connection (connection string or `AzureWebJobsStorage__blobServiceUri`). */
export function manifestBlobReader(storage: StorageConnection, container: string, blob: string): () => Promise<string> {
	return async () => {
		let service;
		try {
			service = createBlobServiceClient(storage);
		} catch (error) {
			throw new Error(`${(error as Error).message}: the scheduled reconcile reads its manifest from blob storage`);
		}

		const client = service.getContainerClient(container).getBlobClient(blob);
		// Refused before it is downloaded: the timer shares its process (and its memory) with the queue worker.
		const {contentLength = 0} = await client.getProperties();
		if (contentLength > maximumManifestBytes) {
			throw new Error(`${container}/${blob}: ${contentLength.toLocaleString('en-US')} bytes, more than a manifest may hold (${maximumManifestBytes.toLocaleString('en-US')}); nothing reconciled`);
		}

		const buffer = await client.downloadToBuffer();
		return buffer.toString('utf8');
	};
}
