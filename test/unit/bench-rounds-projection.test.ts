// The 1.3B projection of `fedkseed bench rounds` (bench/rounds.ts, projectRound): what each way of keeping S
// pays for a round's change, from measured rates. Pure arithmetic on stated rates, so the properties hold exactly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { projectRound } from '../../bench/rounds';

const rates = { seedParamsPerSecond: 0.5e9, materializeParamsPerSecond: 0.6e9, writeMBps: 4000, readMBps: 2000, diskMBps: 1000 };
const P = 1_315_700_000;

describe('bench rounds: the projection of a round at scale', () => {
  it('S in a file costs held S plus one read and one write of 8 bytes a parameter, whatever was applied before', () => {
    for (const applied of [150, 1024, 4096]) {
      const p = projectRound(rates, P, applied, 150);
      const traffic = (8 * P) / 1e6 / rates.readMBps + (8 * P) / 1e6 / rates.writeMBps;
      assert.ok(Math.abs(p.seconds.file - p.seconds.held - traffic) < 1e-9 * p.seconds.file);
      assert.ok(Math.abs(p.fileAtDiskSeconds - p.seconds.held - (16 * P) / 1e6 / rates.diskMBps) < 1e-9 * p.fileAtDiskSeconds);
      assert.equal(p.coefficientsOverFile, p.seconds.coefficients / p.seconds.file);
    }
  });

  it('S as coefficients pays every applied seed, so its cost grows with them and the others do not', () => {
    const early = projectRound(rates, P, 150, 150);
    const late = projectRound(rates, P, 4096, 150);
    assert.equal(late.seconds.held, early.seconds.held);
    assert.equal(late.seconds.file, early.seconds.file);
    const perSeed = P / rates.seedParamsPerSecond;
    assert.ok(Math.abs(late.seconds.coefficients - early.seconds.coefficients - (4096 - 150) * perSeed) < 1e-6 * late.seconds.coefficients);
    assert.ok(late.coefficientsOverFile > 10, `K = 4096 applied: coefficients ÷ file ${late.coefficientsOverFile}`);
  });
});
