import type { FullQueuePolicy } from './full-queue-policy.js';

/** `reject` (SPEC §3.2): a full queue or class refuses the arrival and keeps everything queued. */
export const rejectPolicy: FullQueuePolicy = {
  name: 'reject',
  whenClassFull: () => ({ kind: 'refuse', reason: 'priority-capacity' }),
  whenQueueFull: () => ({ kind: 'refuse', reason: 'capacity' }),
};
