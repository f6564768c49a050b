/**
 * A llama-orch orchestrator in its own process for benchmarks (so its CPU and memory are its
 * own): receives a config over IPC, starts, and answers with its URL and every replica's engine
 * URL, so the same engine processes can be driven directly too.
 */
import { validateConfig } from '../../src/config/load-config.js';
import type { RawConfig } from '../../src/config/schema.js';
import { startOrchestrator } from '../../src/main.js';
import { createLogger } from '../../src/util/logger.js';

process.once('message', (raw: RawConfig) => {
  void (async () => {
    const { config } = validateConfig(raw);
    const running = await startOrchestrator(config, {
      logger: createLogger({ level: config.logging.level, redactPatterns: config.logging.redactPatterns }),
      // The `journal` bench measures admission without the task journal too.
      taskJournal: process.env['BENCH_TASK_JOURNAL'] !== 'off',
    });
    await running.ready;
    const replicas: Record<string, string[]> = {};
    for (const p of running.orchestrator.pools)
      replicas[p.id] = p.supervisor.replicas().map((r) => r.adapter.baseUrl);
    process.send?.({ url: running.url, replicas });
    const stop = (): void => void running.close(500).then(() => process.exit(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  })();
});
