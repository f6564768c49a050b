import { describe, expect, it } from 'vitest';
import { chooseReplica } from '../../src/scheduler/placement.js';

const r = (id: string, inFlight: number, slotsTotal = 4) => ({ id, inFlight, slotsTotal });

describe('chooseReplica (ORCH-3007..3010, ORCH-3019)', () => {
  it('picks the least-utilized replica with a free slot', () => {
    expect(
      chooseReplica([r('a', 3), r('b', 1), r('c', 2)], { affinity: undefined, overloadRatio: 0.75 }),
    ).toBe('b');
    expect(
      chooseReplica([r('a', 4), r('b', 4)], { affinity: undefined, overloadRatio: 0.75 }),
    ).toBeUndefined();
  });

  it('keeps a session on its warm replica while it is not overloaded (ORCH-3009)', () => {
    expect(chooseReplica([r('a', 0), r('b', 1)], { affinity: 'b', overloadRatio: 0.75 })).toBe('b');
    expect(chooseReplica([r('a', 0, 1), r('b', 0, 1)], { affinity: 'b', overloadRatio: 0.75 })).toBe('b');
  });

  it('a warm but overloaded replica does not win', () => {
    expect(chooseReplica([r('a', 0), r('b', 3)], { affinity: 'b', overloadRatio: 0.75 })).toBe('a');
    expect(chooseReplica([r('a', 1, 1), r('b', 0, 1)], { affinity: 'a', overloadRatio: 0.75 })).toBe('b');
  });
});
