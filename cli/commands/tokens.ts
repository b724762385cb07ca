import type { Command } from 'commander';
import type { FederationStore } from '../../federation/store';
import { ANSWER_TIMEOUT_MS, requestRevocation } from '../../federation/revocation-requests';
import { createToken, listTokens, revokeToken } from '../../federation/tokens';
import { CliError } from '../errors';
import { positiveInt, storeArgument } from '../options';
import { printable } from '../../protocol/client-id';
import { emitJson, note } from '../output';
import { isPostgresUrl } from '../../federation/gateway/url';
import { openStoreSpec, storeName } from '../store-spec';
import { ignoreScratchFolder } from '../../contracts/node/scratch-folder';
import { FEDERATION_DEFAULTS } from '../../contracts/defaults';
import { errorMessage } from '../../protocol/errors';

interface StoreOption {
  store: string;
  storePasswordFile?: string;
  json?: boolean;
}

export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description("Manage a federation server's access tokens (stored hashed; the secret is shown once)");
  const storeOption = (c: Command) =>
    c
      .option('--store <dir|url>', "the server's store: its folder, or its postgres:// URL without a password", storeArgument, FEDERATION_DEFAULTS.store)
      .option('--store-password-file <file>', 'the database password for a postgres:// store (default: PGPASSWORD or ~/.pgpass)')
      .option('--json', 'print the result as JSON');
  storeOption(
    tokens
      .command('create')
      .description('Issue a token for one client')
      .option('--label <text>', 'who the token is for', 'client')
      .option('--client-id <id>', 'the one client identity the token may speak for (default: the identity of its first connection)')
      .option('--max-examples <n>', 'the most examples an upload with this token counts for (whatever the client claims)', positiveInt),
  ).action(async (o: StoreOption & { label: string; clientId?: string; maxExamples?: number }) => {
    await withStore(o, async (store) => {
      let issued;
      try {
        issued = await createToken(store, o.label, o.clientId, { maxExamples: o.maxExamples });
      } catch (err) {
        throw new CliError(errorMessage(err));
      }
      if (o.json) emitJson({ id: issued.id, label: o.label, token: issued.token, clientId: o.clientId ?? null });
      else {
        process.stdout.write(`${issued.token}\n`);
        const bound = o.clientId === undefined ? 'bound to the client id of its first connection' : `for client id ${o.clientId} only`;
        note(`token ${issued.id} for "${printable(o.label)}", ${bound}; the secret is not stored and cannot be shown again`);
      }
    });
  });
  storeOption(
    tokens
      .command('revoke')
      .description('Revoke a token by its id: a running server closes its sessions within a second; its client id stays reserved')
      .argument('<id>', 'token id (the 16 hex digits after fks_)'),
  ).action(async (id: string, o: StoreOption) => {
    const tokenId = /^fks_([0-9a-f]{16})_/.exec(id)?.[1] ?? id;
    const report = (revoked: boolean, sessionsClosed: number | null): void => {
      if (o.json) emitJson({ id: tokenId, revoked, ...(sessionsClosed === null ? {} : { sessionsClosed }) });
      if (!revoked) throw new CliError(`no token with id ${tokenId} in ${storeName(o.store)}`);
      if (o.json) return;
      const sessions =
        sessionsClosed === null
          ? 'a running server closes its sessions within a second'
          : `the running server closed its ${sessionsClosed} live session${sessionsClosed === 1 ? '' : 's'}`;
      note(`revoked ${tokenId}: ${sessions}; its client id stays reserved (tokens create --client-id <id> grants it to a new token)`);
    };
    // An embedded store a server holds open: that server revokes it (federation/revocation-requests.ts).
    const held = await withStore(o, async (store) => report(await revokeToken(store, tokenId), null), { lockedOk: true });
    if (held !== 'locked') return;
    if (!/^[0-9a-f]{16}$/.test(tokenId)) return report(false, null);
    const outcome = await requestRevocation(o.store, tokenId);
    if (outcome === null)
      throw new CliError(
        `the store ${storeName(o.store)} is in use by a process that did not take the revocation within ${ANSWER_TIMEOUT_MS / 1000} s (a server older than this one?); stop it and revoke again`,
      );
    report(outcome.revoked, outcome.sessionsClosed);
  });
  storeOption(tokens.command('list').description('List token ids, labels and creation times (never secrets)')).action(async (o: StoreOption) => {
    await withStore(o, async (store) => {
      // Labels and client ids reach a terminal only printable (JSON escapes them itself).
      const list = (await listTokens(store)).map((t) =>
        o.json ? t : { ...t, label: printable(t.label), ...(t.clientId === undefined ? {} : { clientId: printable(t.clientId) }) },
      );
      if (o.json) emitJson({ tokens: list });
      else if (list.length === 0) note(`no tokens in ${storeName(o.store)}`);
      else {
        // One header row, then a row a token, in aligned columns.
        const rows = [
          ['id', 'created', 'client id', 'label'],
          ...list.map((t) => [t.id, t.createdAt, `${t.clientId ?? '(unused)'}${t.revokedAt === undefined ? '' : ' (revoked, id reserved)'}`, t.label]),
        ];
        const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')}\n`);
      }
    });
  });
}

/** Runs `body` on the store; with `lockedOk`, an embedded store another process holds gives 'locked' instead of an error. */
async function withStore(o: StoreOption, body: (store: FederationStore) => Promise<void>, { lockedOk = false } = {}): Promise<'done' | 'locked'> {
  const path = storeName(o.store);
  let store: FederationStore;
  if (!isPostgresUrl(o.store)) ignoreScratchFolder(o.store);
  try {
    store = await openStoreSpec(o.store, { passwordFile: o.storePasswordFile });
  } catch (err) {
    if (err instanceof CliError) throw err;
    // The PostgreSQL store names itself (without credentials) in its errors.
    if (isPostgresUrl(o.store)) throw new CliError(errorMessage(err));
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED' && lockedOk) return 'locked';
    if (cause?.code === 'LEVEL_LOCKED')
      throw new CliError(`the store ${path} is in use by a running server; stop it first (tokens take effect at the next connection)`);
    throw new CliError(`cannot open the store ${path}: ${errorMessage(err)}`);
  }
  try {
    await body(store);
  } finally {
    await store.close();
  }
  return 'done';
}
