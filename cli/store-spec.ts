// --store of the server and tokens commands: a folder (the embedded LevelDB store) or a postgres:// URL
// (gateways sharing one PostgreSQL database). The URL carries no password: PGPASSWORD, ~/.pgpass or
// --store-password-file give it, so it shows on no command line; messages name the URL without it.
import { readFileSync } from 'node:fs';
import { LevelFederationStore } from '../federation/level-store';
import { PgFederationStore } from '../federation/pg-store';
import { isPostgresUrl, redactStoreUrl } from '../federation/gateway/url';
import type { Logger } from '../federation/log';
import type { FederationStore } from '../federation/store';
import { CliError } from './errors';
import { errorMessage } from '../protocol/errors';

export interface StoreSpecOptions {
  readonly trustStore?: boolean;
  /** A file holding the database password (its first line). */
  readonly passwordFile?: string;
  readonly log?: Logger;
}

/** How the store is named in messages: a folder as given, a URL without credentials. */
export function storeName(spec: string): string {
  return isPostgresUrl(spec) ? redactStoreUrl(spec) : spec;
}

function readPassword(file: string): string {
  try {
    return readFileSync(file, 'utf8').split(/\r?\n/)[0];
  } catch (err) {
    throw new CliError(`cannot read the password file ${file}: ${errorMessage(err)}`);
  }
}

export async function openStoreSpec(spec: string, o: StoreSpecOptions = {}): Promise<FederationStore> {
  if (!isPostgresUrl(spec)) {
    if (o.passwordFile) throw new CliError('--store-password-file goes with a postgres:// store');
    return LevelFederationStore.open(spec, { trustContent: o.trustStore });
  }
  if (o.trustStore) throw new CliError('--trust-store is for the embedded store; PostgreSQL keeps its own integrity');
  return PgFederationStore.open(spec, { ...(o.passwordFile ? { password: readPassword(o.passwordFile) } : {}), log: o.log });
}
