/**
 * What a llama-server command line decides that the running server never reports: `/props` and
 * `/slots` of the pinned build (`get_res_props`, `server_slot::to_json` in
 * `tools/server/server-context.cpp`) state neither continuous batching nor whether the KV cache
 * is one buffer shared by all slots. Flags as `common/arg.cpp` of the pinned source defines them;
 * when a flag is given more than once the last one wins, as there.
 */
export interface LlamaLaunchFlags {
  /** `-cb/--cont-batching` vs `-nocb/--no-cont-batching` (llama.cpp's default: on). */
  readonly continuousBatching: boolean;
  /**
   * `-kvu/--kv-unified`: every slot may use every cell of `-c`, so each slot reports the whole
   * cache as its `n_ctx`. Off otherwise (the server turns it on only when `-np` is not given,
   * and llama-orch always gives it): each slot owns `-c / -np` cells.
   */
  readonly kvUnified: boolean;
  /**
   * `--jinja` vs `--no-jinja` (the server's default: on, `use_jinja = true` in `common/common.h`):
   * the model's Jinja chat template, which tool calls need.
   */
  readonly jinja: boolean;
}

const last = (
  args: readonly string[],
  on: readonly string[],
  off: readonly string[],
): boolean | undefined => {
  let value: boolean | undefined;
  for (const a of args) {
    if (on.includes(a)) value = true;
    else if (off.includes(a)) value = false;
  }
  return value;
};

export function launchFlags(args: readonly string[]): LlamaLaunchFlags {
  return {
    continuousBatching: last(args, ['-cb', '--cont-batching'], ['-nocb', '--no-cont-batching']) ?? true,
    kvUnified: last(args, ['-kvu', '--kv-unified'], ['-no-kvu', '--no-kv-unified']) ?? false,
    jinja: last(args, ['--jinja'], ['--no-jinja']) ?? true,
  };
}
