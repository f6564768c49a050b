import { it } from 'vitest';
import { KEYS, TEST_KEYS, call, startHarness, tinyModelPath, tinyPool } from '../support/harness.js';
const STAND_IN = '/work/main/test/fixtures/nvidia-smi/nvidia-smi';
process.env['FAKE_NVIDIA_SMI_FILE'] = '/work/main/test/fixtures/nvidia-smi/two-gpus.csv';
it('dbg', async () => {
  const model = await tinyModelPath();
  const t0 = Date.now();
  const h = await startHarness({
    auth: { keys: TEST_KEYS },
    engines: { nvidia_smi_path: STAND_IN, telemetry_interval_ms: 100 },
    pools: [{ ...tinyPool('full', model), devices: [1], replicas: 5 }],
  });
  console.log('ready after', Date.now() - t0);
  console.log(JSON.stringify((await call(h.url, 'GET', '/v1/pools/full/health', { key: KEYS.ops })).json, null, 1));
  console.log(h.logs.lines.filter((l) => l.includes('capacity')).slice(0, 8).join('\n'));
  await h.close();
}, 120000);
