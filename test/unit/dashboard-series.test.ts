// The dashboard's chart data (webview/dashboard/series.ts): axes that hold every point under a labelled
// top tick, a seed chart whose peak is the distribution's maximum, and two runs' figures side by side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparisonRows, heldOutSummary, linearBounds, logBounds, sameRuns, seedBands, type RunSide } from '../../webview/dashboard/series';
import { emptyHistory, type RunHistory, type RunSummary } from '../../contracts/webview-messages';

function assertHolds(bounds: ReturnType<typeof linearBounds>, values: number[]): void {
  assert.ok(bounds);
  assert.equal(bounds.ticks.at(-1), bounds.max, 'the top tick is the axis maximum');
  assert.equal(bounds.ticks[0], bounds.min, 'the bottom tick is the axis minimum');
  for (const v of values) {
    assert.ok(v < bounds.max, `${v} is below the top tick ${bounds.max}`);
    assert.ok(v >= bounds.min, `${v} is at or above the bottom tick ${bounds.min}`);
  }
  for (let i = 1; i < bounds.ticks.length; i++) assert.ok(bounds.ticks[i]! > bounds.ticks[i - 1]!, 'ticks ascend');
}

test("log bounds: FedAvg's cumulative bytes far above the round bytes stay under the top tick", () => {
  // A federation's bytes: a few hundred bytes a round against tens of megabytes for FedAvg.
  const values = [315, 356, 671, 41.8e6, 83.6e6, 125.4e6];
  const b = logBounds(values);
  assertHolds(b, values);
  assert.ok(b!.ticks.length <= 12, `${b!.ticks.length} ticks`);
  for (const t of b!.ticks.slice(1, -1)) assert.ok(t > b!.min && t < b!.max);
  assert.deepEqual(logBounds([0, -1, Number.NaN]), null);
  // A value exactly on a 1-2-5 step still gets room above it.
  assertHolds(logBounds([100, 1000]), [100, 1000]);
});

test('linear bounds: every point strictly under the top tick, a floor and a ceiling kept', () => {
  const losses = [6.03, 5.79, 2.93, 6.31, 4.1];
  assertHolds(linearBounds(losses), losses);
  const flat = [5.25, 5.25];
  assertHolds(linearBounds(flat), flat);
  const accuracy = [0, 12.1, 11.6, 99.5];
  const p = linearBounds(accuracy, { floor: 0, ceiling: 100 });
  assert.ok(p);
  assert.equal(p.min, 0);
  assert.equal(p.max, 100);
  assert.equal(p.ticks.at(-1), 100);
  const small = [12.1, 14.6];
  const q = linearBounds(small, { floor: 0, ceiling: 100 });
  assertHolds(q, small);
  assert.ok(q!.max <= 100 && q!.max < 40, `a 15 % curve is not squeezed under a 100 % axis: max ${q!.max}`);
  assert.equal(linearBounds([]), null);
});

test('seed bands: the top of the band peaks at the largest p·K, the bottom at the smallest, x spans 0–100', () => {
  const k = 4096;
  // One seed at 2.69× uniform, a few raised ones, the rest a little under uniform (sums to 1).
  const p = new Float64Array(k).fill(1);
  p[17] = 2.69;
  for (let i = 100; i < 140; i++) p[i] = 1.5;
  p[4000] = 0.4;
  const sum = p.reduce((a, b) => a + b, 0);
  for (let i = 0; i < k; i++) p[i] = p[i]! / sum;
  const bands = seedBands(p, 512);
  assert.ok(bands.length <= 512);
  const max = Math.max(...p) * k;
  const min = Math.min(...p) * k;
  assert.ok(Math.abs(Math.max(...bands.map((b) => b.max)) - max) < 1e-9, 'the chart peaks where the subtitle says');
  assert.ok(Math.abs(Math.min(...bands.map((b) => b.min)) - min) < 1e-9);
  assert.equal(bands[0]!.x, 0);
  assert.equal(bands.at(-1)!.x, 100);
  for (const b of bands) assert.ok(b.min <= b.mean + 1e-12 && b.mean <= b.max + 1e-12);
  for (let i = 1; i < bands.length; i++) assert.ok(bands[i]!.max <= bands[i - 1]!.min + 1e-12, 'sorted, most likely first');
});

const summary = (over: Partial<RunSummary>): RunSummary => ({
  id: 'a',
  kind: 'local',
  state: 'finished',
  title: 'Local training',
  startedAt: 1_000_000,
  endedAt: 1_000_000 + 200_000,
  model: 'model.onnx',
  modelIdentity: 'x',
  server: null,
  step: 200,
  steps: 200,
  committedRound: 0,
  rounds: 0,
  loss: null,
  heldOutBaseline: null,
  heldOutLast: null,
  bytes: { rounds: 0, fedAvg: 0, overhead: 0 },
  evaluations: [],
  checkpoint: true,
  error: null,
  ...over,
});
const history = (over: Partial<RunHistory>): RunHistory => ({ ...emptyHistory, ...over });

test("comparison rows: both runs' held-out loss start → best/last, change, accuracy, steps or rounds, bytes, time", () => {
  const local: RunSide = {
    run: summary({}),
    history: history({
      stepLoss: [
        [1, 5.5],
        [2, 5.4],
      ],
      heldOut: [
        [0, 5.4534],
        [100, 5.2],
        [200, 5.2797],
      ],
      accuracy: [
        [0, 0.121],
        [200, 0.146],
      ],
    }),
  };
  const federation: RunSide = {
    run: summary({ id: 'b', kind: 'federation', title: 'Local federation', step: 32, steps: 8, committedRound: 4, rounds: 4, endedAt: null, state: 'running' }),
    history: history({
      heldOut: [
        [0, 5.45],
        [32, 5.4],
      ],
      rounds: [1, 2, 3, 4].map((round) => ({ round, up: 100, down: 200, fedAvg: 1e7 })),
    }),
  };
  const rows = comparisonRows(local, federation);
  const byLabel = new Map(rows.map((r) => [r.label, r]));
  assert.equal(byLabel.get('Held-out loss')?.shown, '5.4534 → best 5.2000, last 5.2797');
  assert.equal(byLabel.get('Held-out loss')?.compared, '5.4500 → best 5.4000, last 5.4000');
  assert.match(byLabel.get('Change')!.shown, /^−0\.1737 \(−3\.2%\)$/);
  assert.equal(byLabel.get('Top-1 accuracy')?.shown, '12.1% → 14.6%');
  assert.equal(byLabel.get('Top-1 accuracy')?.compared, '—');
  assert.equal(byLabel.get('Steps / rounds')?.shown, '200 of 200 steps');
  assert.equal(byLabel.get('Steps / rounds')?.compared, '4 of 4 rounds (τ = 8)');
  assert.equal(byLabel.get('Bytes')?.shown, 'none (local run)');
  assert.match(byLabel.get('Bytes')!.compared, /^1\.2\d? KB \(.*less than FedAvg\)$/);
  assert.equal(byLabel.get('Time')?.shown, '3 min 20 s');
  assert.equal(byLabel.get('Time')?.compared, 'running');
  assert.deepEqual(heldOutSummary(local.history), { start: 5.4534, best: 5.2, last: 5.2797 });
});

test('same runs: the same run, or the same curves and bytes, are told apart from different ones', () => {
  const h = history({
    stepLoss: [[1, 5.5]],
    heldOut: [
      [0, 5.4],
      [10, 5.3],
    ],
  });
  const a: RunSide = { run: summary({ id: 'a' }), history: h };
  assert.equal(sameRuns(a, a), true);
  assert.equal(sameRuns(a, { run: summary({ id: 'b', startedAt: 5 }), history: structuredClone(h) }), true, 'a repeated deterministic run');
  assert.equal(
    sameRuns(a, {
      run: summary({ id: 'b' }),
      history: history({
        ...h,
        heldOut: [
          [0, 5.4],
          [10, 5.29],
        ],
      }),
    }),
    false,
  );
  assert.equal(
    sameRuns({ run: summary({ id: 'a' }), history: emptyHistory }, { run: summary({ id: 'b' }), history: emptyHistory }),
    false,
    'two runs with nothing yet are not "the same"',
  );
});
