// The hash chain over round records and the state's seal, engine-free: a sealed history replays to the
// state bit for bit (−0 and +0 told apart), and verification names a record altered, a record replaced
// by a self-consistent one, a state vector altered, a missing record and a state rolled back.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { afterFromJson, afterOf, afterToJson, applyRound, initialState, recordHash, sealCommit, verifyChain } from '../../federation/record-chain';
import type { FederationState, RoundAfter, RoundRecord } from '../../federation/store';

const K = 6;

function stateAfter(round: number, prev: FederationState, change: Float64Array): FederationState {
  const residual = new Float64Array(prev.residual);
  residual[round % K] = round % 2 ? -0 : 0.25 * round;
  const importanceSum = new Float64Array(prev.importanceSum);
  const importanceCount = new Float64Array(prev.importanceCount);
  importanceSum[(round * 2) % K] += 1.5;
  importanceCount[(round * 2) % K] += 1;
  return { round, coefficients: prev.coefficients.map((c, j) => c + change[j]), residual, importanceSum, importanceCount };
}

/** A sealed history of `n` rounds, as a store would hold it. */
async function history(n: number): Promise<{ records: RoundRecord[]; states: FederationState[]; state: FederationState }> {
  const records: RoundRecord[] = [];
  const states: FederationState[] = [];
  let stored: FederationState | null = null;
  let plain = initialState(K);
  for (let r = 1; r <= n; r++) {
    const change = Float64Array.from({ length: K }, (_, j) => (j === r % K ? 4 * r : j === 0 ? -0 : 0));
    plain = stateAfter(r, plain, change);
    states.push(plain);
    const sealed = await sealCommit(
      stored,
      plain,
      { round: r, change, participants: [`c${r}`], examples: r, lossBefore: r === 1 ? NaN : 1, lossAfter: 0.5, committedAt: `t${r}` },
      async (x) => records[x - 1] ?? null,
    );
    records.push(sealed.record);
    stored = sealed.state;
  }
  return { records, states, state: stored as FederationState };
}

const source = (records: RoundRecord[], state: FederationState | null) => ({
  loadState: async () => state,
  loadRound: async (r: number) => records[r - 1] ?? null,
});

const bits = (v: Float64Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');

test('a sealed history verifies and replays to every state bit for bit', async () => {
  const { records, states, state } = await history(5);
  const report = await verifyChain(source(records, state));
  assert.deepEqual([report.damage, report.intact, report.historyComplete, report.unsealedRounds], [[], 5, true, 0]);
  let s = initialState(K);
  for (const [i, record] of records.entries()) {
    s = applyRound(s, record);
    for (const v of ['coefficients', 'residual', 'importanceSum', 'importanceCount'] as const)
      assert.equal(bits(s[v]), bits(states[i][v]), `round ${i + 1}: ${v}`);
  }
  // −0 where +0 was is a change the history keeps.
  const after = afterOf(initialState(K), { ...initialState(K), residual: Float64Array.of(-0, 0, 0, 0, 0, 0) });
  assert.deepEqual(Array.from(after.residual.indices), [0]);
  // The hash does not depend on the NaN's payload (JSON and SQL keep none).
  const nan = new Float64Array(new BigUint64Array([0x7ff8000000000001n]).buffer)[0];
  assert.equal(recordHash({ ...records[0], lossBefore: nan }), recordHash(records[0]));
});

test('verification names what is damaged and where the intact prefix ends', async () => {
  const { records, state } = await history(5);
  const altered = records.map((r) => (r.round === 3 ? { ...r, examples: r.examples + 1 } : r));
  let report = await verifyChain(source(altered, state));
  assert.deepEqual([report.damage, report.intact], [["round 3's record does not match its hash (its content was altered or damaged)"], 2]);

  // A record replaced by one whose own hash is right: the next record's link names it.
  const forged = { ...records[2], examples: 99 };
  const replaced = records.map((r) => (r.round === 3 ? { ...forged, link: { prev: forged.link?.prev ?? '', hash: recordHash(forged) } } : r));
  report = await verifyChain(source(replaced, state));
  assert.deepEqual([report.damage, report.intact], [["round 4's record does not follow round 3's in the chain (a record was replaced or damaged)"], 3]);

  const importance = new Float64Array(state.importanceCount);
  importance[2] += 1;
  report = await verifyChain(source(records, { ...state, importanceCount: importance }));
  assert.deepEqual(
    [report.damage, report.damagedVectors, report.intact],
    [["the state's importance counts vector fails its checksum"], ['importanceCount'], 5],
  );

  report = await verifyChain(source(records.slice(0, 4), state));
  assert.deepEqual([report.damage, report.intact], [["round 5's record is missing"], 4]);

  report = await verifyChain(source(records, { ...state, round: 4 }));
  assert.match(report.damage.join('; '), /round 5's record lies beyond the state's round 4/);
  assert.match(report.damage.join('; '), /the state's seal .* fails its own checksum/);
});

test("a round's statistics and sampling key are part of its record: they read back bit for bit, its hash covers them, and a record without them hashes as before", async () => {
  const { records } = await history(2);
  const bare = records[1];
  const after = bare.after;
  assert.ok(after);
  const robust = { absG: 0.1 + 0.2, examples: 12 };
  const withStats: RoundRecord = { ...bare, after: { ...after, robust } };
  // A record committed before statistics were kept keeps its hash.
  assert.equal(recordHash(bare), bare.link?.hash);
  assert.notEqual(recordHash(withStats), recordHash(bare));
  assert.notEqual(recordHash({ ...bare, after: { ...after, robust: { ...robust, absG: robust.absG * (1 + 2 ** -52) } } }), recordHash(withStats));
  const json = JSON.parse(JSON.stringify(afterToJson(withStats.after as RoundAfter)));
  const back = afterFromJson(json, K, 2);
  assert.deepEqual(back.robust, robust);
  assert.equal(Object.is(back.robust?.absG, robust.absG), true);
  assert.equal(recordHash({ ...bare, after: back }), recordHash(withStats));
  assert.equal(afterFromJson(JSON.parse(JSON.stringify(afterToJson(after))), K, 2).robust, undefined);
  assert.throws(() => afterFromJson({ ...json, robust: 'AAAA' }, K, 2), /round 2's history has no valid statistics/);
  // The sampling key: read back, hashed, and refused when it is not one.
  const key = 'ab'.repeat(32);
  const withKey: RoundRecord = { ...withStats, after: { ...(withStats.after as RoundAfter), sampling: key } };
  assert.notEqual(recordHash(withKey), recordHash(withStats));
  assert.equal(afterFromJson(JSON.parse(JSON.stringify(afterToJson(withKey.after as RoundAfter))), K, 2).sampling, key);
  assert.throws(() => afterFromJson({ ...json, sampling: 'xyz' }, K, 2), /no valid sampling key/);
  const negative = Buffer.from(Float64Array.of(-1, 4).buffer).toString('base64');
  assert.throws(() => afterFromJson({ ...json, robust: negative }, K, 2), /not finite non-negative/);
});
