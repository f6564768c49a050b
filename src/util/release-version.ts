/**
 * Engine release numbers ("0.6.4.post1", "v2.3.0", "3.0.1-dev0"), compared where an engine's wire
 * format changed between releases. An engine that reports no release number (a source build, a
 * simulator's "sim-vllm-1") is taken to be current: adapters follow the newest format there and
 * still accept the older one where the two can be told apart.
 */

/** `[major, minor, patch]` of a version string, or undefined when it does not start with one. */
export function parseRelease(version: string): readonly [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/**
 * True when `version` is a release older than `than`; false for equal or newer releases and for
 * versions that are no release number (see the module comment).
 */
export function releasedBefore(version: string, than: readonly [number, number, number]): boolean {
  const v = parseRelease(version);
  if (v === undefined) return false;
  for (let i = 0; i < 3; i++) {
    const a = v[i] ?? 0;
    const b = than[i] ?? 0;
    if (a !== b) return a < b;
  }
  return false;
}
