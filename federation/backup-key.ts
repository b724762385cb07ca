// The key that authenticates backups (HMAC-SHA256 over a backup's bytes, backup.ts): held by the server's
// operator, never written into a backup or a store. A SHA-256 in the file only shows damage: anyone who
// can edit a backup can recompute it; without this key they cannot make an HMAC that verifies.
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errorMessage } from '../protocol/errors';

export const BACKUP_KEY_BYTES = 32;

/** The backup key cannot be used: `message` says why and what to do. */
export class BackupKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupKeyError';
  }
}

/**
 * Where a folder store's key lives when none is named: beside the folder, not in it, so the key outlives
 * a store that is lost, replaced or moved aside, and a copy of the folder does not carry it.
 */
export function defaultBackupKeyFile(storeDir: string): string {
  return `${resolve(storeDir)}.backup-key`;
}

/** Reads a key file: 64 hex digits (a trailing newline allowed). */
export async function readBackupKey(file: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BackupKeyError(`there is no backup key file ${file}`);
    throw new BackupKeyError(`the backup key file ${file} cannot be read: ${errorMessage(err)}`);
  }
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new BackupKeyError(`the backup key file ${file} does not hold a key (${BACKUP_KEY_BYTES * 2} hex digits)`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Reads the key file, or creates it with a new random key, readable by its owner only (0600). */
export async function readOrCreateBackupKey(file: string): Promise<{ key: Uint8Array; created: boolean }> {
  try {
    const handle = await open(file, 'wx', 0o600);
    const key = randomBytes(BACKUP_KEY_BYTES);
    try {
      await handle.writeFile(`${key.toString('hex')}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { key: new Uint8Array(key), created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new BackupKeyError(`the backup key file ${file} cannot be created: ${errorMessage(err)}`);
  }
  return { key: await readBackupKey(file), created: false };
}
