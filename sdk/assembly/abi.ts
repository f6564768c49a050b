/* eslint-disable @typescript-eslint/no-unnecessary-type-assertion -- AssemblyScript: <i32>, <i64>, <f64> and <usize> are value conversions, not type assertions */
/**
 * The ABI v1 exports (docs/plugins.md). A plugin's entry file re-exports these three and
 * registers its hook handlers at top level.
 */
import { AdmissionDecision, AdmissionSnapshot } from './admission';
import { PlacementDecision, PlacementSnapshot } from './placement';
import { parseJson } from './json';

/** Hook numbers: the first argument of `llorch_decide`. */
export const HOOK_ADMISSION: i32 = 1;
export const HOOK_PLACEMENT: i32 = 2;

let admissionHandler: ((s: AdmissionSnapshot) => AdmissionDecision) | null = null;
let placementHandler: ((s: PlacementSnapshot) => PlacementDecision) | null = null;
// The last decision stays referenced until the next call, so the collector keeps it while the host reads it.
let lastOutput: ArrayBuffer = new ArrayBuffer(0);

/** Sets the admission handler (call it at the top level of the plugin's entry file). */
export function registerAdmission(handler: (s: AdmissionSnapshot) => AdmissionDecision): void {
  admissionHandler = handler;
}

/** Sets the placement handler (call it at the top level of the plugin's entry file). */
export function registerPlacement(handler: (s: PlacementSnapshot) => PlacementDecision): void {
  placementHandler = handler;
}

export function llorch_abi_version(): i32 {
  return 1;
}

/** Room for the host's snapshot; freed by `llorch_decide`. */
export function llorch_alloc(len: i32): usize {
  return heap.alloc(<usize>len);
}

/** Decides on the snapshot at `ptr`; returns `ptr << 32 | len` of the UTF-8 JSON decision. */
export function llorch_decide(hook: i32, ptr: usize, len: i32): i64 {
  const text = String.UTF8.decodeUnsafe(ptr, <usize>len);
  heap.free(ptr);
  // Not a JSON object, or an unknown hook: "{}" is a malformed decision, so the host falls back.
  let out = '{}';
  const v = parseJson(text);
  if (v != null) {
    const o = v.asObject();
    if (o != null && hook == HOOK_ADMISSION) {
      const handler = admissionHandler;
      if (handler == null) out = AdmissionDecision.accept().toJson();
      else out = handler(AdmissionSnapshot.fromJson(o)).toJson();
    } else if (o != null && hook == HOOK_PLACEMENT) {
      const handler = placementHandler;
      if (handler == null) out = PlacementDecision.builtIn().toJson();
      else out = handler(PlacementSnapshot.fromJson(o)).toJson();
    }
  }
  lastOutput = String.UTF8.encode(out);
  return ((<i64>changetype<usize>(lastOutput)) << 32) | (<i64>lastOutput.byteLength);
}
