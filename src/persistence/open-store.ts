import type { ResolvedConfig } from '../config/resolved-config.js';
import { ConfigError } from '../config/resolve-config.js';
import { PostgresStore } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

/** The configured store, migrated and ready. */
export async function openStore(config: ResolvedConfig): Promise<Store> {
  if (config.storage.kind === 'sqlite') return new SqliteStore(config.storage.sqlitePath);
  const url = process.env[config.storage.postgresUrlEnv];
  if (url === undefined || url === '')
    throw new ConfigError([
      `storage: kind postgres needs the server URL in $${config.storage.postgresUrlEnv}`,
    ]);
  return PostgresStore.open(url);
}
