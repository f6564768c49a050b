import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrefixIndex } from '../../src/scheduler/prefix-index.js';
import {
  blockHashes,
  prefixKeyOf,
  PREFIX_KEY_BLOCKS,
  PROMPT_BLOCK_CHARS,
  promptBlocksOf,
  promptText,
} from '../../src/scheduler/prompt-blocks.js';

const text = (n: number, seed = 'a'): string =>
  Array.from({ length: n }, (_, k) => `${seed}${k % 10}`).join('');

describe('prompt block hashes', () => {
  it('hash full blocks only, each covering everything before it', () => {
    const a = blockHashes('x'.repeat(10), 4);
    expect(a.hashes).toHaveLength(2);
    expect(a.chars).toBe(10);
    // Same block text at another position: another hash (the chain includes the prefix).
    expect(a.hashes[0]).not.toBe(a.hashes[1]);
    expect(blockHashes('abc', 4).hashes).toEqual([]);
  });

  it('two texts share exactly the hashes of the blocks they share in full', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 64 }),
        fc.string({ maxLength: 32 }),
        fc.string({ maxLength: 32 }),
        (p, x, y) => {
          const a = blockHashes(p + x, 8).hashes;
          const b = blockHashes(p + y, 8).hashes;
          let common = 0;
          while (common < Math.min(x.length, y.length) && x[common] === y[common]) common++;
          const sharedBlocks = Math.floor((p.length + common) / 8);
          let k = 0;
          while (k < Math.min(a.length, b.length) && a[k] === b[k]) k++;
          expect(k).toBe(Math.min(sharedBlocks, a.length, b.length));
        },
      ),
    );
  });

  it('chat turns render in order, so a conversation and its next turn share a prefix', () => {
    const system = { role: 'system' as const, content: text(600) };
    const turn1 = { prompt: undefined, messages: [system, { role: 'user' as const, content: 'hi' }] };
    const turn2 = {
      prompt: undefined,
      messages: [
        ...turn1.messages,
        { role: 'assistant' as const, content: 'hello' },
        { role: 'user' as const, content: 'more' },
      ],
    };
    expect(promptText(turn2).startsWith(promptText(turn1))).toBe(true);
    const a = promptBlocksOf(turn1).hashes;
    const b = promptBlocksOf(turn2).hashes;
    expect(a.length).toBeGreaterThan(0);
    expect(b.slice(0, a.length)).toEqual(a);
  });

  it('is computed once per task spec object', () => {
    const spec = { prompt: text(300) };
    expect(promptBlocksOf(spec)).toBe(promptBlocksOf(spec));
  });

  it('names a prompt by its leading blocks: every user and turn of one system prompt shares the key', () => {
    const chat = (system: string, user: string) =>
      promptBlocksOf({
        prompt: undefined,
        messages: [
          { role: 'system' as const, content: system },
          { role: 'user' as const, content: user },
        ],
      });
    const sysA = text(400, 'a'); // 800 characters: longer than the key
    const sysB = text(400, 'b');
    const keyA = prefixKeyOf(chat(sysA, 'first question'));
    expect(keyA).toBeDefined();
    expect(prefixKeyOf(chat(sysA, `another user entirely ${text(300, 'q')}`))).toBe(keyA);
    expect(prefixKeyOf(chat(sysB, 'first question'))).not.toBe(keyA);
    // A system prompt differing after the key's PREFIX_KEY_BLOCKS blocks: same key (same home order).
    const later = `${sysA.slice(0, PREFIX_KEY_BLOCKS * PROMPT_BLOCK_CHARS)}${text(200, 'z')}`;
    expect(prefixKeyOf(chat(later, 'first question'))).toBe(keyA);
    // Shorter than a block: no key.
    expect(prefixKeyOf(blockHashes('short'))).toBeUndefined();
  });
});

describe('PrefixIndex', () => {
  const h = (...ids: string[]) => ids;

  it('matches the leading blocks it holds, stopping at the first it lacks', () => {
    const idx = new PrefixIndex(10);
    idx.record(h('a', 'b', 'c'));
    expect(idx.match(h('a', 'b', 'c', 'd'))).toBe(3);
    expect(idx.match(h('a', 'x', 'c'))).toBe(1);
    expect(idx.match(h('x', 'a'))).toBe(0);
  });

  it('is bounded by its capacity in blocks, least recently routed first out, a prompt tail before its head', () => {
    const idx = new PrefixIndex(4);
    idx.record(h('s', 's1', 's2'));
    idx.record(h('t', 't1'));
    expect(idx.size).toBe(4);
    // The oldest prompt lost its tail, its head stayed.
    expect(idx.match(h('s', 's1', 's2'))).toBe(2);
    expect(idx.match(h('t', 't1'))).toBe(2);
    // Routing s again refreshes it: now t goes first.
    idx.record(h('s', 's1', 's2'));
    expect(idx.match(h('s', 's1', 's2'))).toBe(3);
    expect(idx.match(h('t', 't1'))).toBe(1);
  });

  it('never holds more than its capacity, whatever is routed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.array(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), { maxLength: 6 }), {
          maxLength: 20,
        }),
        (cap, prompts) => {
          const idx = new PrefixIndex(cap);
          for (const p of prompts) {
            idx.record(p);
            expect(idx.size).toBeLessThanOrEqual(cap);
          }
          const last = prompts.at(-1);
          // The head of the prompt just routed is held.
          if (last && last.length > 0) expect(idx.match(last)).toBeGreaterThanOrEqual(1);
        },
      ),
    );
  });

  it('shrinking drops the least recent blocks', () => {
    const idx = new PrefixIndex(6);
    idx.record(h('a', 'a1'));
    idx.record(h('b', 'b1'));
    idx.resize(2);
    expect(idx.match(h('b', 'b1'))).toBe(2);
    expect(idx.match(h('a'))).toBe(0);
  });

  it('remembers sessions, bounded, and clear() forgets blocks and sessions (a restarted engine is cold)', () => {
    const idx = new PrefixIndex(8, 2);
    idx.record(h('a'), 's1');
    idx.record(h('b'), 's2');
    idx.record(h('c'), 's3');
    expect(idx.holdsSession('s1')).toBe(false);
    expect(idx.holdsSession('s3')).toBe(true);
    idx.forgetSession('s3');
    expect(idx.holdsSession('s3')).toBe(false);
    idx.clear();
    expect(idx.size).toBe(0);
    expect(idx.holdsSession('s2')).toBe(false);
    expect(idx.match(h('a'))).toBe(0);
  });
});
