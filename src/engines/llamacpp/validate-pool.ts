/** The checks of llama.cpp's own pool fields: `tensor_split` gives one share per GPU of a replica. */
import type { RawPool } from '../../config/schema.js';

const entries = (n: number) => `${n} entr${n === 1 ? 'y' : 'ies'}`;

export function validateLlamaCppPool(p: RawPool, at: string): string[] {
  const split = p.tensor_split;
  if (split === undefined) return [];
  if (p.devices === 'cpu') return [`${at}.tensor_split: only applies to GPU devices, but devices is 'cpu'`];
  if (p.replica_devices !== undefined) {
    const counts = [...new Set(p.replica_devices.map((d) => d.length))];
    if (counts.length !== 1 || counts[0] !== split.length)
      return [
        `${at}.tensor_split: has ${entries(split.length)} ` +
          `but replicas have ${counts.join(' and ')} device(s) in replica_devices; give one share per device of a replica`,
      ];
    return [];
  }
  if (split.length !== p.devices.length)
    return [
      `${at}.tensor_split: has ${entries(split.length)} but devices has ${p.devices.length}; give one share per device`,
    ];
  if (!split.some((s) => s > 0)) return [`${at}.tensor_split: at least one share must be greater than 0`];
  return [];
}
