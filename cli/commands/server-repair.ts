// fedkseed server repair: a folder store refused as damaged is rebuilt from its round history
// (federation/repair.ts) into a new folder beside it, checked, and only then put in its place; the
// damaged folder is moved aside and kept, never deleted. An undamaged store is left as it is.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { cp, rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { isPostgresUrl } from '../../federation/gateway/url';
import { LevelFederationStore, recordedRound, StoreDamagedError } from '../../federation/level-store';
import { damagedWal } from '../../federation/level-wal';
import { describeDamage, verifyChain } from '../../federation/record-chain';
import { describeRepair, repairFromHistory, RepairImpossibleError } from '../../federation/repair';
import { CliError } from '../errors';
import { storeArgument } from '../options';
import { note } from '../output';
import { FEDERATION_DEFAULTS } from '../../contracts/defaults';
import { suggest } from '../invocation';
import { errorMessage } from '../../protocol/errors';

export function registerServerRepair(server: Command, storeOf: (o: { store: string }, cmd: Command) => string): void {
  server
    .command('repair')
    .description(
      'Rebuild a folder store refused as damaged from its round history: keeps the rounds up to the first damaged one, rebuilds C, the residual and the Pro importance from them and says what is lost; the damaged folder is moved aside and kept',
    )
    .option('--store <dir>', 'the store folder', storeArgument, FEDERATION_DEFAULTS.store)
    .action((o: { store: string }, cmd: Command) => runRepair(storeOf(o, cmd)));
}

async function runRepair(dir: string): Promise<void> {
  if (isPostgresUrl(dir))
    throw new CliError('repair rebuilds a folder store; a damaged postgres:// store is replaced by restoring a backup into an empty database (server restore)');
  if (!existsSync(dir) || !statSync(dir).isDirectory() || readdirSync(dir).length === 0) throw new CliError(`there is no store at ${dir}`);
  let damage: string;
  try {
    const store = await LevelFederationStore.open(dir);
    try {
      const chain = await verifyChain(store);
      if (chain.damage.length === 0) {
        note(`the store ${dir} verifies (rounds 1..${chain.intact} chained, the state's checksums pass): nothing to repair, nothing changed`);
        return;
      }
      damage = describeDamage(chain);
    } finally {
      await store.close();
    }
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') throw new CliError(`the store ${dir} is in use by a running server; stop it first`);
    if (!(err instanceof StoreDamagedError)) throw new CliError(errorMessage(err));
    damage = err.message;
  }

  // The round the store held: its integrity record's, or the last round a damaged log still names (LevelDB
  // drops those writes when it opens the copy, so the rounds it held are known only from here).
  const held = Math.max((await recordedRound(dir)) ?? 0, ...damagedWal(dir).flatMap((d) => d.rounds));
  // Read from a copy, since LevelDB's recovery writes into the folder it opens; the damaged one stays as it is.
  const reading = `${dir}.reading-${process.pid}`;
  const fresh = `${dir}.repairing-${process.pid}`;
  await rm(reading, { recursive: true, force: true });
  await rm(fresh, { recursive: true, force: true });
  let lines: string[];
  try {
    await cp(dir, reading, { recursive: true });
    let source: LevelFederationStore;
    try {
      source = await LevelFederationStore.open(reading, { salvage: true });
    } catch (err) {
      throw new RepairImpossibleError(`LevelDB cannot open it (${errorMessage(err)}): nothing can be read from it`);
    }
    try {
      const target = await LevelFederationStore.open(fresh);
      try {
        const report = await repairFromHistory(source, target, held);
        // A federation started over is not a repair: the operator decides that, with a backup or a new folder.
        if (report.kept === 0 && report.round > 0) throw new RepairImpossibleError(`no round can be kept (${report.chain.damage.join('; ')})`);
        lines = describeRepair(report);
      } finally {
        await target.close();
      }
    } finally {
      await source.close();
    }
    // Read back from disk: the repaired store must open and verify as a whole.
    const reopened = await LevelFederationStore.open(fresh);
    try {
      const chain = await verifyChain(reopened);
      if (chain.damage.length > 0) throw new Error(`the repaired store does not verify: ${chain.damage.join('; ')}`);
    } finally {
      await reopened.close();
    }
  } catch (err) {
    await rm(fresh, { recursive: true, force: true });
    const how = err instanceof RepairImpossibleError ? '' : ' (a fault of the repair)';
    throw new CliError(
      `cannot rebuild ${dir} from its round history${how}: ${errorMessage(err)}; the store was not changed; restore it from a backup: ${suggest(`server restore <backup> --store ${dir} --repair`)}`,
    );
  } finally {
    await rm(reading, { recursive: true, force: true });
  }
  const aside = `${dir}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  await rename(dir, aside);
  await rename(fresh, dir);
  note(`rebuilt ${dir} from its round history and verified it:`);
  // The chain names the damage; where it found none (a token, a digest), the refusal does.
  if (!lines[0].startsWith('damaged:')) note(`  damaged: ${damage}`);
  for (const l of lines) note(`  ${l}`);
  note(`the damaged store is kept at ${aside}`);
}
