#!/usr/bin/env node
/** Entry point supervisors launch for `launch.worker: sim` pools (same as `llorch sim`). */
import { simCommand } from './sim-main.js';

simCommand(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`llorch sim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
