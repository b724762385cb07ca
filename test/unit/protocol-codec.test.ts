import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  COEFFICIENT_SCALE,
  ErrorCode,
  ProtocolError,
  expandDelta,
  factorDelta,
  probabilitiesFromLevels,
  quantizeImportance,
  packIndices,
  unpackIndices,
  PROTOCOL_VERSION,
  type FederationConfig,
  type Message,
} from '../../protocol';
import { decodeMessage, encodeMessage } from '../../protocol/node/codec';
import { quantizeWithFeedback } from '../../federation/aggregate';

function roundTrip(m: Message, k?: number): Message {
  return decodeMessage(encodeMessage(m), { k });
}

test('every message survives a round trip', () => {
  const delta = factorDelta(Float64Array.from([0, 8, -24, 2 ** 40, 0]));
  assert.equal(delta.exponent, 3);
  const messages: Message[] = [
    { type: 'hello', clientId: 'ä-client', token: 't', modelHash: new Uint8Array(32).fill(3), lastSyncedRound: 7, generatorVersion: 2 },
    {
      type: 'welcome',
      committedRound: 4,
      config: {
        k: 5,
        federationSeed: 0xdeadbeef,
        epsilon: 5e-4,
        eta: 3e-7,
        shape: 'tensor-rms',
        tau: 200,
        batchSize: 1,
        sampling: 'pro',
        weighting: 'equal',
        rounds: 10,
        clientsPerRound: 3,
        deadlineMs: 1000,
      },
    },
    { type: 'round', round: 5, baseRound: 2, steps: 200, delta, probabilities: { bits: 6, levels: Uint8Array.from([0, 63, 1, 2, 3]) } },
    {
      type: 'upload',
      round: 5,
      examples: 9,
      lossBeforeSum: 1.5,
      lossBeforeCount: 2,
      lossAfterSum: 1.25,
      lossAfterCount: 2,
      digestRound: 4,
      digest: new Uint8Array(32).fill(9),
      pairs: [
        { seed: 4, g: 0.5 },
        { seed: 0, g: -3 },
      ],
    },
    { type: 'ack', round: 5, status: 'late', digest: 'mismatch' },
    { type: 'result', round: 5, participants: 3, examples: 30, lossBefore: 2, lossAfter: 1.5 },
    { type: 'sync', round: 9, baseRound: 0, finished: true, delta },
    { type: 'error', code: ErrorCode.WrongRound, message: 'nope' },
  ];
  for (const m of messages) assert.deepEqual(roundTrip(m, 5), m);
  assert.deepEqual(Array.from(expandDelta(delta)), [0, 8, -24, 2 ** 40, 0]);
});

test("WELCOME carries the perturbation shape; a config without one is the paper's isotropic, an unknown shape byte is refused", () => {
  const config: FederationConfig = {
    k: 5,
    federationSeed: 1,
    epsilon: 1e-3,
    eta: 1e-4,
    tau: 10,
    batchSize: 4,
    sampling: 'uniform',
    weighting: 'examples',
    rounds: 2,
    clientsPerRound: 1,
    deadlineMs: 1000,
  };
  const plain = decodeMessage(encodeMessage({ type: 'welcome', committedRound: 0, config }));
  assert.equal(plain.type === 'welcome' && plain.config.shape, 'isotropic');
  const bytes = encodeMessage({ type: 'welcome', committedRound: 0, config: { ...config, shape: 'tensor-rms' } });
  // version, type, K, F, ε, η, τ, batch, sampling, weighting: the shape byte follows.
  const at = 2 + 4 + 4 + 8 + 8 + 4 + 4 + 1 + 1;
  assert.equal(bytes[at], 1);
  bytes[at] = 7;
  assert.throws(
    () => decodeMessage(bytes),
    (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.Malformed && /shape/.test(e.message),
  );
});

test("WELCOME carries the generator in the shape byte's high nibble: an iid config's bytes are unchanged, rank1 round-trips, an unknown one is refused", () => {
  const config: FederationConfig = {
    k: 5,
    federationSeed: 1,
    epsilon: 1e-3,
    eta: 1e-4,
    shape: 'tensor-rms',
    tau: 10,
    batchSize: 4,
    sampling: 'uniform',
    weighting: 'examples',
    rounds: 2,
    clientsPerRound: 1,
    deadlineMs: 1000,
  };
  const at = 2 + 4 + 4 + 8 + 8 + 4 + 4 + 1 + 1;
  const iid = encodeMessage({ type: 'welcome', committedRound: 0, config });
  assert.deepEqual(encodeMessage({ type: 'welcome', committedRound: 0, config: { ...config, generator: 'iid' } }), iid);
  assert.equal(iid[at], 1, 'the byte a peer without generators writes and reads');
  const decoded = decodeMessage(iid);
  assert.equal(decoded.type === 'welcome' && decoded.config.generator, undefined);
  const rank1 = { ...config, generator: 'rank1' as const };
  const bytes = encodeMessage({ type: 'welcome', committedRound: 0, config: rank1 });
  assert.equal(bytes[at], 0x11);
  assert.deepEqual(decodeMessage(bytes), { type: 'welcome', committedRound: 0, config: rank1 });
  bytes[at] = 0x21;
  assert.throws(
    () => decodeMessage(bytes),
    (e: unknown) => e instanceof ProtocolError && e.code === ErrorCode.Malformed && /generator = 2/.test(e.message),
  );
});

test('g travels as float32 and indices are bit-packed', () => {
  const pairs = Array.from({ length: 200 }, (_, n) => ({ seed: (n * 1237) % 4096, g: Math.fround(Math.sin(n) * 100) }));
  const frame = encodeMessage({
    type: 'upload',
    round: 1,
    examples: 200,
    lossBeforeSum: 0,
    lossBeforeCount: 0,
    lossAfterSum: 0,
    lossAfterCount: 0,
    digestRound: 0,
    digest: new Uint8Array(32),
    pairs,
  });
  assert.ok(frame.length <= 2 + 44 + 32 + 5 + 300 + 800, `upload is ${frame.length} bytes`);
  const back = decodeMessage(frame, { k: 4096 });
  assert.equal(back.type, 'upload');
  if (back.type === 'upload') assert.deepEqual(back.pairs, pairs);
  const idx = [0, 1, 4095, 17, 2048];
  assert.deepEqual(Array.from(unpackIndices(packIndices(idx, 12), idx.length, 12)), idx);
});

test('seed indices unpack exactly as read bit by bit, least significant first, at every width', () => {
  const bitByBit = (bytes: Uint8Array, count: number, bits: number): number[] =>
    Array.from({ length: count }, (_, n) => {
      let v = 0;
      for (let b = 0; b < bits; b++) v += ((bytes[(n * bits + b) >>> 3] >>> ((n * bits + b) & 7)) & 1) * 2 ** b;
      return v;
    });
  let s = 5;
  const byte = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  for (let bits = 1; bits <= 32; bits++) {
    for (const count of [0, 1, 2, 3, 7, 8, 9, 31, 200]) {
      const bytes = Uint8Array.from({ length: Math.ceil((count * bits) / 8) }, byte);
      assert.deepEqual(Array.from(unpackIndices(bytes, count, bits)), bitByBit(bytes, count, bits), `${count} indices of ${bits} bits`);
      // Packing what was unpacked gives the same bytes, but for the unused high bits of the last byte.
      const repacked = packIndices(unpackIndices(bytes, count, bits), bits);
      const tail = (count * bits) % 8;
      if (tail !== 0) bytes[bytes.length - 1] &= (1 << tail) - 1;
      assert.deepEqual(repacked, bytes, `repacking ${count} indices of ${bits} bits`);
    }
  }
});

test('decoding rejects bad frames with typed codes', () => {
  const code = (f: () => unknown): number => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ProtocolError);
      return e.code;
    }
    return -1;
  };
  const upload = encodeMessage({
    type: 'upload',
    round: 1,
    examples: 1,
    lossBeforeSum: 0,
    lossBeforeCount: 0,
    lossAfterSum: 0,
    lossAfterCount: 0,
    digestRound: 0,
    digest: new Uint8Array(32),
    pairs: [{ seed: 9, g: 1 }],
  });
  assert.equal(
    code(() => decodeMessage(upload, { k: 9 })),
    ErrorCode.SeedOutOfRange,
  );
  assert.equal(
    code(() => decodeMessage(upload.subarray(0, upload.length - 1), { k: 16 })),
    ErrorCode.Truncated,
  );
  assert.equal(
    code(() => decodeMessage(Uint8Array.from([9, 1]))),
    ErrorCode.UnsupportedVersion,
  );
  assert.equal(
    code(() => decodeMessage(Uint8Array.from([PROTOCOL_VERSION, 99]))),
    ErrorCode.UnknownType,
  );
  assert.equal(
    code(() => decodeMessage(new Uint8Array(0))),
    ErrorCode.Truncated,
  );
  const nan = encodeMessage({
    type: 'upload',
    round: 1,
    examples: 1,
    lossBeforeSum: NaN,
    lossBeforeCount: 0,
    lossAfterSum: 0,
    lossAfterCount: 0,
    digestRound: 0,
    digest: new Uint8Array(32),
    pairs: [],
  });
  assert.equal(
    code(() => decodeMessage(nan)),
    ErrorCode.NonFinite,
  );
  // A round assignment whose delta does not cover K seeds.
  const round = encodeMessage({ type: 'round', round: 2, baseRound: 1, steps: 1, delta: factorDelta(new Float64Array(4)), probabilities: null });
  assert.equal(
    code(() => decodeMessage(round, { k: 5 })),
    ErrorCode.Malformed,
  );
});

test('Pro probabilities are a softmax of quantized levels, bounded by e', () => {
  const q = quantizeImportance(Float64Array.from([0, 0.5, 1, 2]), 6);
  assert.deepEqual(Array.from(q.levels), [0, 16, 32, 63]);
  const p = probabilitiesFromLevels(q);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(Math.abs(p[3] / p[0] - Math.E) < 1e-12);
  const uniform = probabilitiesFromLevels(quantizeImportance(new Float64Array(8), 6));
  assert.ok(uniform.every((v) => v === 1 / 8));
});

test('quantization with error feedback loses nothing in the long run', () => {
  const k = 64;
  let residual = new Float64Array(k);
  const exact = new Float64Array(k);
  const applied = new Float64Array(k);
  for (let r = 0; r < 50; r++) {
    const deltaA = Float64Array.from({ length: k }, (_, j) => Math.sin(r * 13 + j) * (j === 0 ? 50 : 0.01));
    const q = quantizeWithFeedback(deltaA, residual, 12);
    for (let j = 0; j < k; j++) {
      assert.ok(Number.isSafeInteger(q.change[j]));
      assert.ok(Math.abs(q.change[j] / 2 ** q.exponent) <= 2047);
      exact[j] += deltaA[j] * COEFFICIENT_SCALE;
      applied[j] += q.change[j];
    }
    residual = new Float64Array(q.residual);
  }
  for (let j = 0; j < k; j++) assert.ok(Math.abs(exact[j] - applied[j] - residual[j]) < 1e-6, `seed ${j}`);
});
