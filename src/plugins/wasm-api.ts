/**
 * The part of the WebAssembly JS API the host uses, typed here: the project compiles without the
 * DOM library, which is where TypeScript declares `WebAssembly`.
 */

/** A compiled module (structured-cloneable to a worker). */
export interface WasmModule {
  readonly [Symbol.toStringTag]: string;
}

interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
}

export const wasmApi: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
