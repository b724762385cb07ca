// Repair from the round history where the history is incomplete (rounds written before each kept its
// history): C is rebuilt from the changes; the residual and importance come from the stored state when it
// is at the kept round, said to be unverified when it has no checksums; when the kept round is earlier they
// are reset to zero and the report says so.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LevelFederationStore } from '../../federation/level-store';
import { describeRepair, repairFromHistory } from '../../federation/repair';
import type { FederationState, RoundRecord } from '../../federation/store';
import type { FederationConfig } from '../../protocol';

const config: FederationConfig = {
  k: 4,
  federationSeed: 9,
  epsilon: 1e-3,
  eta: 1e-4,
  tau: 5,
  batchSize: 2,
  sampling: 'pro',
  weighting: 'equal',
  rounds: 5,
  clientsPerRound: 1,
  deadlineMs: 1000,
};

/** Three rounds as the previous version wrote them: no link, no history; the state without a seal. */
const records: RoundRecord[] = [1, 2, 3].map((round) => ({
  round,
  change: Float64Array.of(round, 0, -round, 0),
  participants: ['a'],
  examples: 1,
  lossBefore: 1,
  lossAfter: 0.5,
  committedAt: `t${round}`,
}));
const state: FederationState = {
  round: 3,
  coefficients: Float64Array.of(6, 0, -6, 0),
  residual: Float64Array.of(0.25, 0, 0, -0.5),
  importanceSum: Float64Array.of(3, 0, 1, 0),
  importanceCount: Float64Array.of(3, 0, 1, 0),
};

function legacy(unreadable?: number) {
  return {
    loadConfig: async () => config,
    loadState: async () => state,
    loadRound: async (r: number) => {
      if (r === unreadable) throw new Error('Corruption: block checksum mismatch');
      return records[r - 1] ?? null;
    },
    loadDigest: async () => null,
    listTokens: async () => [],
  };
}

async function repairInto<T>(
  source: ReturnType<typeof legacy>,
  body: (report: Awaited<ReturnType<typeof repairFromHistory>>, store: LevelFederationStore) => Promise<T>,
): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-repair-unit-'));
  try {
    const target = await LevelFederationStore.open(join(dir, 'store'));
    try {
      return await body(await repairFromHistory(source, target), target);
    } finally {
      await target.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('rounds without history, the state at the kept round: its residual and importance are carried over, said to be unverified', async () => {
  await repairInto(legacy(), async (report, store) => {
    assert.deepEqual([report.kept, report.reset], [3, []]);
    const got = await store.loadState();
    for (const v of ['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const) assert.deepEqual(got?.[v], state[v], v);
    assert.match(describeRepair(report).join('\n'), /carried over unverified: the error-feedback residual \(written before states had checksums\)/);
  });
});

test('rounds without history, a later round unreadable: C is rebuilt to the kept round, the residual and importance are reset and named', async () => {
  await repairInto(legacy(3), async (report, store) => {
    assert.equal(report.kept, 2);
    const got = await store.loadState();
    assert.deepEqual(Array.from(got?.coefficients ?? []), [3, 0, -3, 0]);
    assert.deepEqual(Array.from(got?.residual ?? []), [0, 0, 0, 0]);
    const text = describeRepair(report).join('\n');
    assert.match(text, /damaged: round 3's record cannot be read \(Corruption: block checksum mismatch\)/);
    assert.match(text, /kept rounds 1\.\.2; lost round 3 /);
    assert.match(text, /reset to zero .*: the error-feedback residual, the Pro importance sums, the Pro importance counts/);
  });
});
