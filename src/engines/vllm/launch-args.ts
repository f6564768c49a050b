/** `vllm serve` (docs.vllm.ai "vllm serve" CLI arguments). */
import type { ResolvedPool } from '../../config/resolved-config.js';
import { replicaGpuCount } from '../replica-gpus.js';

export function vllmArgs(pool: ResolvedPool, port: number, replicaIndex = 0): string[] {
  const l = pool.launch;
  const args = ['serve', pool.model.path, '--host', l.host, '--port', String(port)];
  args.push('--served-model-name', pool.model.id, '--max-model-len', String(pool.ctx));
  args.push(
    '--max-num-seqs',
    String(l.parallel),
    '--tensor-parallel-size',
    String(replicaGpuCount(pool, replicaIndex)),
    '--seed',
    '0',
  );
  // Explicit, so the capacity planner reserves what the engine takes whatever vLLM's default.
  if (l.gpuMemoryUtilization !== undefined)
    args.push('--gpu-memory-utilization', String(l.gpuMemoryUtilization));
  // The API key travels as VLLM_API_KEY (engineEnv), not on the command line.
  return [...args, ...l.extraArgs];
}

/** What a vLLM command line enables of tool calling (`vllm serve --help`, "Frontend" arguments). */
export interface VllmToolCalling {
  /** `--enable-auto-tool-choice`: `tool_choice: "auto"` lets the model decide to call a tool. */
  readonly autoToolChoice: boolean;
  /** `--tool-call-parser NAME`: parses the model's tool calls out of its text; required for any tool call. */
  readonly parser: string | undefined;
}

/** The value of a `--flag VALUE` or `--flag=VALUE` argument, the last one given winning as in argparse. */
function flagValue(args: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  args.forEach((a, i) => {
    if (a === flag) value = args[i + 1];
    else if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
  });
  return value;
}

/** Tool calling as the pool's extra arguments set it (llama-orch adds no such flag itself). */
export function vllmToolCalling(extraArgs: readonly string[]): VllmToolCalling {
  return {
    autoToolChoice: extraArgs.includes('--enable-auto-tool-choice'),
    parser: flagValue(extraArgs, '--tool-call-parser'),
  };
}

/**
 * Whether the command line makes the process a pooling (embedding) one: `--task embed|embedding`
 * (v0.6 to v0.10) or `--runner pooling` (later). Without either the model's architecture decides,
 * which only the engine tells (the adapter's embeddings probe).
 */
export function vllmPoolingByArgs(extraArgs: readonly string[]): boolean {
  const task = flagValue(extraArgs, '--task');
  return task === 'embed' || task === 'embedding' || flagValue(extraArgs, '--runner') === 'pooling';
}
