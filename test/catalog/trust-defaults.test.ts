/**
 * Which trust policy applies when none is set (SPEC §8): `strict` in the prod profile,
 * `permissive` in the dev profile; `llorch dev` is strict for the model it generates and signs,
 * permissive for a model of the user's own (`--model`), which is not catalogued.
 */
import { describe, expect, it } from 'vitest';
import { DEV_DEFAULTS, devConfig } from '../../src/cli/dev-config.js';
import { validateConfig } from '../../src/config/load-config.js';

const pool = {
  id: 's',
  engine: 'vllm',
  model: { id: 's' },
  ctx: 256,
  devices: [0],
  launch: { worker: 'sim' },
} as const;

describe('trust policy defaults', () => {
  it('strict in prod, permissive in dev, and what is set wins', () => {
    const policy = (raw: Record<string, unknown>) =>
      validateConfig({ pools: [pool], ...raw }).config.catalog.trustPolicy;
    expect(policy({})).toBe('strict');
    expect(policy({ profile: 'prod' })).toBe('strict');
    expect(policy({ profile: 'dev' })).toBe('permissive');
    expect(policy({ profile: 'dev', catalog: { trust_policy: 'strict' } })).toBe('strict');
    expect(policy({ profile: 'prod', catalog: { trust_policy: 'permissive' } })).toBe('permissive');
  });

  it('llorch dev: strict for its generated, signed model; permissive for --model', () => {
    expect(devConfig(DEV_DEFAULTS).config.catalog.trustPolicy).toBe('strict');
    expect(devConfig({ ...DEV_DEFAULTS, modelPath: '/models/own.gguf' }).config.catalog.trustPolicy).toBe(
      'permissive',
    );
  });
});
