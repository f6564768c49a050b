/**
 * The code of a plugin worker thread, run with `new Worker(source, { eval: true })`: an eval
 * worker needs no file of its own, so the same code runs from src (tests) and dist.
 *
 * Protocol over the `port` handed in `workerData` (a MessagePort, so the host can also drain an
 * answer synchronously with `receiveMessageOnPort` when its deadline timer fires late):
 *   → {type:'call', seq, hook, input}          ← {type:'result', seq, output, elapsedMs}
 *                                               ← {type:'trap', seq, message}
 *   → {type:'ping', seq}                       ← {type:'pong', seq}
 * and once after start ← {type:'ready', abi} or ← {type:'error', message}.
 *
 * WASI preview 1 without preopens, environment or arguments beyond the plugin id. Its clocks and
 * random source answer ENOTSUP: the snapshot's `now_ms` is the only time a plugin sees, so a
 * decision is a function of the snapshot.
 */
export const WORKER_SOURCE = String.raw`
'use strict';
const { workerData } = require('node:worker_threads');
// node:wasi warns that it is experimental, once per worker: a line on stderr per plugin restart.
process.removeAllListeners('warning');
const { WASI } = require('node:wasi');
const { performance } = require('node:perf_hooks');
const { port, module, id } = workerData;
const ENOTSUP = 58;
const post = (m) => port.postMessage(m);
let exports_;
try {
  const wasi = new WASI({ version: 'preview1', args: [id], env: {}, preopens: {}, returnOnExit: true });
  const imports = wasi.getImportObject();
  const preview1 = Object.assign({}, imports.wasi_snapshot_preview1, {
    clock_time_get: () => ENOTSUP,
    clock_res_get: () => ENOTSUP,
    random_get: () => ENOTSUP,
  });
  const instance = new WebAssembly.Instance(module, {
    wasi_snapshot_preview1: preview1,
    env: {
      abort: () => {
        throw new Error('plugin aborted');
      },
    },
  });
  exports_ = instance.exports;
  if (!(exports_.memory instanceof WebAssembly.Memory)) throw new Error('the module exports no memory');
  for (const f of ['llorch_abi_version', 'llorch_alloc', 'llorch_decide'])
    if (typeof exports_[f] !== 'function') throw new Error('the module does not export ' + f);
  if (typeof exports_._start === 'function') throw new Error('a plugin is a reactor: it must not export _start');
  if (typeof exports_._initialize === 'function') wasi.initialize(instance);
  post({ type: 'ready', abi: exports_.llorch_abi_version() });
} catch (err) {
  post({ type: 'error', message: String(err && err.message ? err.message : err) });
}
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
port.on('message', (m) => {
  if (m.type === 'ping') return post({ type: 'pong', seq: m.seq });
  if (m.type !== 'call' || !exports_) return;
  const t0 = performance.now();
  try {
    const input = encoder.encode(m.input);
    const ptr = exports_.llorch_alloc(input.length) >>> 0;
    new Uint8Array(exports_.memory.buffer, ptr, input.length).set(input);
    const packed = BigInt.asUintN(64, BigInt(exports_.llorch_decide(m.hook, ptr, input.length)));
    const outPtr = Number(packed >> 32n);
    const outLen = Number(packed & 0xffffffffn);
    const output = decoder.decode(new Uint8Array(exports_.memory.buffer, outPtr, outLen));
    post({ type: 'result', seq: m.seq, output, elapsedMs: performance.now() - t0 });
  } catch (err) {
    post({ type: 'trap', seq: m.seq, message: String(err && err.message ? err.message : err) });
  }
});
`;
