/** The `llama-server` command line of a pool (`llama-server --help` of the pinned build). */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ResolvedPool } from '../../config/resolved-config.js';
import { OFFLOAD_REPORT_ARGS } from './offload-report.js';

export function llamaServerArgs(pool: ResolvedPool, port: number): string[] {
  const l = pool.launch;
  const args = [
    '-m',
    pool.model.path,
    '--host',
    l.host,
    '--port',
    String(port),
    // `-c` is the whole KV cache; each of the `parallel` slots gets ctx tokens.
    '-c',
    String(pool.ctx * l.parallel),
    '-np',
    String(l.parallel),
    '-t',
    String(l.threads),
    l.contBatching ? '--cont-batching' : '--no-cont-batching',
    '-ngl',
    String(l.gpuLayers),
    '--metrics',
    // Slot actions (erasing a deleted session's KV, SPEC §17 §2.4) are refused without a save
    // path; nothing is ever saved there.
    '--slot-save-path',
    slotSavePath(),
  ];
  if (pool.tensorSplit !== undefined) args.push('--tensor-split', pool.tensorSplit.join(','));
  // Embeddings next to completions (the pinned server serves both); whether the model pools is
  // detected on the running server (`LlamaCppAdapter.properties`).
  if (l.embeddings) args.push('--embeddings', ...(l.pooling === undefined ? [] : ['--pooling', l.pooling]));
  // GPU pools: llama.cpp prints where the layers went only at verbosity 4; the offload check reads it.
  if (pool.devices !== 'cpu' && l.gpuLayers > 0) args.push(...OFFLOAD_REPORT_ARGS);
  return [...args, ...l.extraArgs];
}

/** The directory llama-server requires for slot actions; it must exist before the server starts. */
function slotSavePath(): string {
  const dir = join(tmpdir(), 'llama-orch-slots');
  mkdirSync(dir, { recursive: true });
  return dir;
}
