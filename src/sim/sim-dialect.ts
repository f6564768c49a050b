/** The engine wire formats the simulator speaks. */
export const SIM_DIALECTS = ['llamacpp', 'vllm', 'tgi', 'triton'] as const;
export type SimDialect = (typeof SIM_DIALECTS)[number];
