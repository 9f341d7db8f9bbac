// Preloaded (node --import) into a process the benchmark measures: writes its CPU time and peak RSS on exit.

import {writeFileSync} from 'node:fs';

const file = process.env.SOD_BENCH_USAGE_FILE;
if (file) {
	process.on('exit', () => {
		const usage = process.resourceUsage();
		writeFileSync(file, JSON.stringify({cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000, maxRssKb: usage.maxRSS}));
	});
}
