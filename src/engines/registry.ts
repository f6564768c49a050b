/**
 * The driver of every engine. Typed key by key against `ENGINES`: an engine added to the list
 * without a driver, or a driver filed under another engine's name, does not compile.
 */
import type { Engine } from '../domain/types.js';
import type { EngineDriver } from './engine-driver.js';
import { llamacppDriver } from './llamacpp/driver.js';
import { tgiDriver } from './tgi/driver.js';
import { tritonDriver } from './triton/driver.js';
import { vllmDriver } from './vllm/driver.js';

export const ENGINE_DRIVERS: { readonly [E in Engine]: EngineDriver<E> } = {
  llamacpp: llamacppDriver,
  vllm: vllmDriver,
  tgi: tgiDriver,
  triton: tritonDriver,
};

/** The driver of `engine`. */
export function driverOf<E extends Engine>(engine: E): EngineDriver<E> {
  return ENGINE_DRIVERS[engine];
}
