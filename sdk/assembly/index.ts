/** @llama-orch/plugin-sdk: write llama-orch policy plugins in AssemblyScript (ABI v1). */
export * from './json';
export * from './admission';
export * from './placement';
export * from './tools';
export * from './time';
export * from './redact';
export {
  registerAdmission,
  registerPlacement,
  llorch_abi_version,
  llorch_alloc,
  llorch_decide,
  HOOK_ADMISSION,
  HOOK_PLACEMENT,
} from './abi';
