// fedkseed server backup <file> / restore <file>: a self-checking copy of a federation (federation/
// backup.ts) and its way back. A folder store is restored into a new folder beside it, checked, and
// only then put in its place; a store it replaces (--force) or one refused as damaged (--repair) is
// moved aside and kept, never deleted. A postgres:// store is restored into an empty database.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { rename, rm, rmdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { BackupDamagedError, readBackup, restoreBackup, storeContentHash, storeIsEmpty, writeBackup, type Backup } from '../../federation/backup';
import { BackupKeyError, defaultBackupKeyFile, readBackupKey, readOrCreateBackupKey } from '../../federation/backup-key';
import { isPostgresUrl } from '../../federation/gateway/url';
import { LevelFederationStore, StoreDamagedError } from '../../federation/level-store';
import type { FederationStore } from '../../federation/store';
import { formatBytes } from '../../protocol/format';
import { CliError } from '../errors';
import { existingPath, storeArgument } from '../options';
import { note } from '../output';
import { openStoreSpec, storeName } from '../store-spec';
import { registerServerRepair } from './server-repair';
import { FEDERATION_DEFAULTS } from '../../contracts/defaults';
import { suggest } from '../invocation';
import { errorMessage } from '../../protocol/errors';

interface BackupCliOptions {
  store: string;
  storePasswordFile?: string;
  backupKeyFile?: string;
  force?: boolean;
}

interface RestoreCliOptions extends BackupCliOptions {
  repair?: boolean;
  acceptUnauthenticated?: boolean;
}

const KEY_HELP =
  'the key that authenticates backups (HMAC-SHA256; 64 hex digits); default for a folder store: <dir>.backup-key beside it, created (0600) by the first backup; required for a postgres:// store';

/** The backup key file: the one named, or the folder store's default; a postgres:// store has no default. */
function keyFileOf(o: BackupCliOptions): string {
  if (o.backupKeyFile) return o.backupKeyFile;
  if (isPostgresUrl(o.store))
    throw new CliError(
      'a postgres:// store has no default backup key: name one with --backup-key-file <file> (64 hex digits; keep it apart from the database and the backups)',
    );
  return defaultBackupKeyFile(o.store);
}

async function keyOf(o: BackupCliOptions, create: boolean): Promise<Uint8Array> {
  const file = keyFileOf(o);
  try {
    if (!create) return await readBackupKey(file);
    const { key, created } = await readOrCreateBackupKey(file);
    if (created) note(`created the backup key ${file} (readable by you only): backups are restored only with it; keep it, apart from the backups`);
    return key;
  } catch (err) {
    if (!(err instanceof BackupKeyError)) throw err;
    throw new CliError(
      `${err.message}; ${create ? 'nothing was backed up' : 'a backup is restored with the key it was made with (--backup-key-file); nothing was restored'}`,
    );
  }
}

const STORE_HELP = 'the store: a folder (the embedded store) or a postgres:// URL without a password';

export function registerServerBackup(server: Command): void {
  server
    .command('backup <file>')
    .description(
      'Write a self-checking backup of the federation (configuration, state, every round, digests, tokens) to <file>; with a folder store, stop the server first',
    )
    .option('--store <dir|url>', STORE_HELP, storeArgument, FEDERATION_DEFAULTS.store)
    .option('--store-password-file <file>', 'the database password for a postgres:// store', existingPath('--store-password-file'))
    .option('--backup-key-file <file>', KEY_HELP)
    .option('--force', 'replace <file> if it exists')
    .action((file: string, o: BackupCliOptions, cmd: Command) => runBackup(file, { ...o, store: storeOf(o, cmd) }));
  server
    .command('restore <file>')
    .description('Restore a backup into the store: the backup is checked first, the restored store after; a folder store is replaced only when complete')
    .option('--store <dir|url>', STORE_HELP, storeArgument, FEDERATION_DEFAULTS.store)
    .option('--store-password-file <file>', 'the database password for a postgres:// store', existingPath('--store-password-file'))
    .option('--backup-key-file <file>', KEY_HELP)
    .option(
      '--accept-unauthenticated',
      'accept a backup that carries no HMAC (made before backups were authenticated); one whose HMAC does not verify is still refused',
    )
    .option('--force', 'replace a folder store that holds a federation (it is moved aside and kept, not deleted)')
    .option('--repair', 'replace a folder store refused as damaged with this backup (the damaged folder is moved aside and kept)')
    .action((file: string, o: RestoreCliOptions, cmd: Command) => runRestore(file, { ...o, store: storeOf(o, cmd) }));
  registerServerRepair(server, storeOf);
}

/** --store given before the subcommand's name (server --store X backup f) counts as well. */
function storeOf(o: BackupCliOptions, cmd: Command): string {
  const parent = cmd.parent;
  return cmd.getOptionValueSource('store') === 'default' && parent?.getOptionValueSource('store') === 'cli' ? (parent.opts().store as string) : o.store;
}

/** The store, or a CliError naming why it cannot be opened. */
async function openExisting(spec: string, o: BackupCliOptions): Promise<FederationStore> {
  if (!isPostgresUrl(spec) && (!existsSync(spec) || readdirSync(spec).length === 0)) throw new CliError(`there is no store at ${spec}`);
  try {
    return await openStoreSpec(spec, { passwordFile: o.storePasswordFile });
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw storeError(spec, err);
  }
}

function storeError(spec: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string } }).cause;
  if (cause?.code === 'LEVEL_LOCKED') return new CliError(`the store ${spec} is in use by a running server; stop it first`);
  return new CliError(errorMessage(err));
}

async function runBackup(file: string, o: BackupCliOptions): Promise<void> {
  if (existsSync(file) && !o.force) throw new CliError(`${file} exists; pass --force to replace it`);
  const store = await openExisting(o.store, o);
  let key: Uint8Array;
  try {
    key = await keyOf(o, true);
  } catch (err) {
    await store.close();
    throw err;
  }
  try {
    const s = await writeBackup(store, file, key);
    note(
      `backed up ${storeName(o.store)} at round ${s.round}: ${count(s.records, 'record')} (${count(s.round, 'round')}, ${count(s.tokens, 'token')}), ${formatBytes(s.bytes)} → ${file}`,
    );
  } catch (err) {
    throw new CliError(`cannot back up ${storeName(o.store)}: ${errorMessage(err)}`);
  } finally {
    await store.close();
  }
}

async function readChecked(file: string, o: RestoreCliOptions): Promise<Backup> {
  const key = await keyOf(o, false);
  try {
    return await readBackup(file, { key, acceptUnauthenticated: o.acceptUnauthenticated });
  } catch (err) {
    if (err instanceof BackupDamagedError) throw new CliError(`${err.message}; nothing was restored`);
    throw err;
  }
}

function describe(b: Backup): string {
  return `round ${b.state?.round ?? 0} of ${b.config.rounds} (K = ${b.config.k}, seed ${b.config.federationSeed}), ${count(b.tokens.length, 'token')}, ${count(b.digests.length, 'reference digest')}`;
}

const LATER_ROUNDS = 'rounds committed after it are not in the backup; clients that hold one rebuild their replica from the base model when they rejoin';

async function runRestore(file: string, o: RestoreCliOptions): Promise<void> {
  const backup = await readChecked(file, o);
  if (isPostgresUrl(o.store)) return restoreShared(file, backup, o);
  // Resolved: a trailing slash would put the folder restored beside the store inside it.
  const dir = resolve(o.store);
  const present = existsSync(dir) && statSync(dir).isDirectory() && readdirSync(dir).length > 0;
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new CliError(`${dir} is not a folder`);
  /** What the folder now holds: nothing, an empty store, a federation, or a damaged store. */
  let held: 'nothing' | 'empty' | 'federation' | 'damaged' = 'nothing';
  let heldRound = 0;
  let damage = '';
  if (present) {
    try {
      const current = await LevelFederationStore.open(dir);
      try {
        held = (await storeIsEmpty(current)) ? 'empty' : 'federation';
        heldRound = (await current.loadState())?.round ?? 0;
      } finally {
        await current.close();
      }
    } catch (err) {
      if (!(err instanceof StoreDamagedError)) throw storeError(dir, err);
      held = 'damaged';
      damage = err.message;
    }
  }
  if (held === 'federation' && !o.force)
    throw new CliError(`the store ${dir} holds a federation at round ${heldRound}; pass --force to replace it with ${file} (it is moved aside and kept)`);
  if (held === 'damaged' && !o.repair)
    throw new CliError(
      `${damage}\nTo replace it with this backup (${describe(backup)}): ${suggest(`server restore ${file} --store ${dir} --repair`)} (the damaged folder is moved aside and kept); to rebuild it from its own round history instead: ${suggest(`server repair --store ${dir}`)}`,
    );
  if (o.repair && held !== 'damaged')
    throw new CliError(
      `--repair is for a store refused as damaged; ${dir} ${held === 'federation' ? 'opens as it is (use --force to replace it)' : 'holds no store'}`,
    );

  // Restored beside it and checked from disk before it takes the store's place.
  const fresh = `${dir}.restoring-${process.pid}`;
  await rm(fresh, { recursive: true, force: true });
  try {
    const store = await LevelFederationStore.open(fresh);
    try {
      await restoreBackup(backup, store);
    } finally {
      await store.close();
    }
    const reopened = await LevelFederationStore.open(fresh);
    try {
      if ((await storeContentHash(reopened)) !== backup.contentHash) throw new Error('the restored store, read back from disk, differs from the backup');
    } finally {
      await reopened.close();
    }
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    throw new CliError(`cannot restore ${file} into ${dir}: ${errorMessage(err)}; the store was not changed`);
  }
  let aside: string | null = null;
  try {
    if (held === 'federation' || held === 'damaged') {
      aside = `${dir}.${held === 'damaged' ? 'damaged' : 'replaced'}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await rename(dir, aside);
    } else if (held === 'empty') {
      await rm(dir, { recursive: true }); // an empty store: nothing to keep
    } else if (existsSync(dir)) {
      await rmdir(dir);
    }
    await rename(fresh, dir);
  } catch (err) {
    // The store goes back where it was and the restored copy goes: a restore leaves no half-made folder.
    if (aside !== null && !existsSync(dir)) await rename(aside, dir).catch(() => undefined);
    await rm(fresh, { recursive: true, force: true });
    throw new CliError(
      `cannot put the restored store in place of ${dir}: ${errorMessage(err)}; ${aside !== null && existsSync(aside) ? `the store is kept at ${aside}` : 'the store was not changed'}`,
    );
  }
  note(`restored ${file} into ${dir} and verified it: ${describe(backup)}`);
  if (aside) note(`the ${held === 'damaged' ? 'damaged' : 'previous'} store is kept at ${aside}`);
  if (held === 'federation' && heldRound > (backup.state?.round ?? 0)) note(`the replaced store held round ${heldRound}: ${LATER_ROUNDS}`);
  if (held === 'damaged') note(`${LATER_ROUNDS}`);
}

async function restoreShared(file: string, backup: Backup, o: RestoreCliOptions): Promise<void> {
  if (o.force || o.repair)
    throw new CliError('a postgres:// store is restored into an empty database only: create a new database (or empty this one) and restore into it');
  const store = await openExisting(o.store, o);
  try {
    if (!(await storeIsEmpty(store))) throw new CliError(`the database ${storeName(o.store)} holds a federation; restore into an empty database`);
    await restoreBackup(backup, store);
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot restore ${file} into ${storeName(o.store)}: ${errorMessage(err)}`);
  } finally {
    await store.close();
  }
  note(`restored ${file} into ${storeName(o.store)} and verified it: ${describe(backup)}`);
}

/** "1 token", "2 tokens". */
function count(n: number, one: string): string {
  return `${n} ${n === 1 ? one : `${one}s`}`;
}
