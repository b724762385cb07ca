// Binary codec of the federation protocol. Hand-written rather than JSON or protobuf because the hot
// messages (assignment, upload) must fit a per-round byte budget of a few kilobytes: bit-packed seed
// indices, float32 g, and compressed zigzag-varint coefficient changes leave no room for field tags or
// text. Every frame starts with [version u8][type u8]; decoding validates lengths, ranges and finiteness
// and throws ProtocolError with a code. Layouts: docs/protocol.md. Node-only, like compress.ts beside it (its
// blocks are brotli or raw deflate through node:zlib): the webviews may not import protocol/node/.
import { ByteReader, ByteWriter } from '../bytes';
import type { CoefficientDelta } from '../coefficients';
import { type Bound, describeBound, HYPERPARAMETER_BOUNDS as BOUNDS, withinBound } from '../config-limits';
import { ErrorCode, ProtocolError, isKnownErrorCode } from '../errors';
import { EXACT_LIMIT } from '../exact-range';
import {
  DIGEST_BYTES,
  MAX_CLIENT_ID_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_PAIRS,
  MAX_TOKEN_BYTES,
  MODEL_HASH_BYTES,
  MessageType,
  GENERATORS,
  PERTURBATION_SHAPES,
  PROTOCOL_VERSION,
  type DigestStatus,
  type FederationConfig,
  type Message,
  type UploadStatus,
} from '../messages';
import type { QuantizedProbabilities } from '../probabilities';
import { packIndices, seedIndexBits, unpackIndices } from '../seed-packing';
import { decodeZigzagVarints, encodeZigzagVarints } from '../varint';
import { readCompressed, writeCompressed } from './compress';

export interface DecodeContext {
  /** K of the federation, once known: seed indices and vector lengths are checked against it. */
  readonly k?: number;
}

const uploadStatuses: readonly UploadStatus[] = ['accepted', 'late', 'rejected'];
const digestStatuses: readonly DigestStatus[] = ['reference', 'match', 'mismatch', 'pending'];

function writeConfig(w: ByteWriter, c: FederationConfig): void {
  w.u32(c.k)
    .u32(c.federationSeed >>> 0)
    .f64(c.epsilon)
    .f64(c.eta)
    .u32(c.tau)
    .u32(c.batchSize);
  w.u8(c.sampling === 'pro' ? 1 : 0)
    .u8(c.weighting === 'equal' ? 1 : 0)
    .u8(PERTURBATION_SHAPES.indexOf(c.shape ?? 'isotropic') | (GENERATORS.indexOf(c.generator ?? 'iid') << 4));
  w.u32(c.rounds).u32(c.clientsPerRound).u32(c.deadlineMs);
}

function positiveFinite(v: number, what: string): number {
  if (!Number.isFinite(v) || v <= 0) throw new ProtocolError(ErrorCode.NonFinite, `${what} = ${v} must be finite and > 0`);
  return v;
}

function inRange(v: number, lo: number, hi: number, what: string): number {
  if (v < lo || v > hi) throw new ProtocolError(ErrorCode.Malformed, `${what} = ${v} outside ${lo}..${hi}`);
  return v;
}

/** A configuration value within its hyperparameter bound (config-limits.ts), or a protocol error naming both. */
function bounded(v: number, bound: Bound, what: string): number {
  if (!withinBound(bound, v))
    throw new ProtocolError(Number.isFinite(v) ? ErrorCode.Malformed : ErrorCode.NonFinite, `${what} = ${v}: must be ${describeBound(bound)}`);
  return v;
}

function readConfig(r: ByteReader): FederationConfig {
  const k = bounded(r.u32('K'), BOUNDS.k, 'K');
  const federationSeed = r.u32('federation seed');
  const epsilon = bounded(positiveFinite(r.f64('epsilon'), 'epsilon'), BOUNDS.epsilon, 'epsilon');
  const eta = positiveFinite(r.f64('eta'), 'eta');
  const tau = bounded(r.u32('tau'), BOUNDS.tau, 'tau');
  const batchSize = bounded(r.u32('batch size'), BOUNDS.batchSize, 'batch size');
  const sampling = inRange(r.u8('sampling'), 0, 1, 'sampling') === 1 ? 'pro' : 'uniform';
  const weighting = inRange(r.u8('weighting'), 0, 1, 'weighting') === 1 ? 'equal' : 'examples';
  // The perturbation byte: the shape in the low nibble, the generator in the high one (0, 'iid', is every
  // configuration written before generators, so such a byte reads as it always did; a peer that knows no
  // generators refuses any other as an out-of-range shape).
  const perturbation = r.u8('shape');
  const shape = PERTURBATION_SHAPES[inRange(perturbation & 0xf, 0, PERTURBATION_SHAPES.length - 1, 'shape')];
  const generatorIndex = inRange(perturbation >> 4, 0, GENERATORS.length - 1, 'generator');
  const rounds = bounded(r.u32('rounds'), BOUNDS.rounds, 'rounds');
  const clientsPerRound = bounded(r.u32('clients per round'), BOUNDS.clientsPerRound, 'clients per round');
  // Milliseconds on the wire, at least 1: the command line and settings ask for whole seconds (deadlineSeconds).
  const deadlineMs = inRange(r.u32('deadline'), 1, 0xffffffff, 'deadline');
  const generator = generatorIndex === 0 ? {} : { generator: GENERATORS[generatorIndex] };
  return { k, federationSeed, epsilon, eta, shape, ...generator, tau, batchSize, sampling, weighting, rounds, clientsPerRound, deadlineMs };
}

function fixedBytes(b: Uint8Array, n: number, what: string): Uint8Array {
  if (b.length !== n) throw new ProtocolError(ErrorCode.Malformed, `${what} must be ${n} bytes, got ${b.length}`);
  return b;
}

/** A coefficient change: `u32 K` · `u8 exponent` · BLOCK of zigzag-varint mantissas (docs/protocol.md, DELTA). */
function writeDelta(w: ByteWriter, delta: CoefficientDelta): void {
  w.u32(delta.mantissas.length).u8(delta.exponent);
  writeCompressed(w, encodeZigzagVarints(delta.mantissas));
}

function readDelta(r: ByteReader, k: number | undefined): CoefficientDelta {
  const count = r.u32('delta seed count');
  if (k !== undefined && count !== k) throw new ProtocolError(ErrorCode.Malformed, `delta covers ${count} seeds, the federation has K = ${k}`);
  if (count > 1 << 24) throw new ProtocolError(ErrorCode.TooLarge, `delta covers ${count} seeds`);
  const exponent = r.u8('delta exponent');
  if (exponent > 52) throw new ProtocolError(ErrorCode.Malformed, `delta exponent ${exponent} > 52`);
  const raw = readCompressed(r, count * 8, 'delta mantissas');
  const mantissas = decodeZigzagVarints(raw, count);
  const scale = 2 ** exponent;
  for (let j = 0; j < count; j++) {
    if (Math.abs(mantissas[j] * scale) >= EXACT_LIMIT) {
      throw new ProtocolError(ErrorCode.Malformed, `coefficient change for seed ${j} exceeds 2^53`);
    }
  }
  return { exponent, mantissas };
}

/** Pro probabilities: `u8 bits` · `u32 K` · BLOCK of K levels (docs/protocol.md, PROBS). */
function writeProbabilities(w: ByteWriter, q: QuantizedProbabilities): void {
  w.u8(q.bits).u32(q.levels.length);
  writeCompressed(w, q.levels);
}

function readProbabilities(r: ByteReader, k: number | undefined): QuantizedProbabilities {
  const bits = r.u8('probability bits');
  if (bits < 1 || bits > 8) throw new ProtocolError(ErrorCode.Malformed, `probability bits ${bits} outside 1..8`);
  const count = r.u32('probability seed count');
  if (k !== undefined && count !== k) throw new ProtocolError(ErrorCode.Malformed, `probabilities cover ${count} seeds, K = ${k}`);
  if (count > 1 << 24) throw new ProtocolError(ErrorCode.TooLarge, `probabilities cover ${count} seeds`);
  const levels = readCompressed(r, count, 'probability levels');
  const top = 2 ** bits - 1;
  for (let j = 0; j < count; j++) {
    if (levels[j] > top) throw new ProtocolError(ErrorCode.Malformed, `level ${levels[j]} of seed ${j} exceeds ${top}`);
  }
  return { bits, levels: new Uint8Array(levels) };
}

function finite(v: number, what: string): number {
  if (!Number.isFinite(v)) throw new ProtocolError(ErrorCode.NonFinite, `${what} is ${v}`);
  return v;
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new ByteWriter();
  w.u8(PROTOCOL_VERSION);
  switch (m.type) {
    case 'hello':
      w.u8(MessageType.Hello).str(m.clientId, 1, MAX_CLIENT_ID_BYTES).str(m.token, 2, MAX_TOKEN_BYTES);
      w.bytes(fixedBytes(m.modelHash, MODEL_HASH_BYTES, 'model hash'))
        .u32(m.lastSyncedRound)
        .u16(m.generatorVersion);
      break;
    case 'welcome':
      w.u8(MessageType.Welcome);
      writeConfig(w, m.config);
      w.u32(m.committedRound);
      break;
    case 'round':
      w.u8(MessageType.RoundAssignment).u32(m.round).u32(m.baseRound).u32(m.steps);
      writeDelta(w, m.delta);
      w.u8(m.probabilities ? 1 : 0);
      if (m.probabilities) writeProbabilities(w, m.probabilities);
      break;
    case 'upload': {
      w.u8(MessageType.Upload).u32(m.round).u32(m.examples);
      w.f64(m.lossBeforeSum).u32(m.lossBeforeCount).f64(m.lossAfterSum).u32(m.lossAfterCount);
      w.u32(m.digestRound).bytes(fixedBytes(m.digest, DIGEST_BYTES, 'digest'));
      let maxSeed = 0;
      for (const p of m.pairs) maxSeed = Math.max(maxSeed, p.seed);
      // The sender does not know K here; it packs with the width K implies, passed as the first byte.
      const bits = seedIndexBits(maxSeed + 1);
      w.u32(m.pairs.length).u8(bits);
      w.bytes(
        packIndices(
          m.pairs.map((p) => p.seed),
          bits,
        ),
      );
      for (const p of m.pairs) w.f32(p.g);
      break;
    }
    case 'ack':
      w.u8(MessageType.UploadAck).u32(m.round).u8(uploadStatuses.indexOf(m.status)).u8(digestStatuses.indexOf(m.digest));
      break;
    case 'result':
      w.u8(MessageType.RoundResult).u32(m.round).u32(m.participants).u32(m.examples).f64(m.lossBefore).f64(m.lossAfter);
      break;
    case 'sync':
      w.u8(MessageType.Sync)
        .u32(m.round)
        .u32(m.baseRound)
        .u8(m.finished ? 1 : 0);
      writeDelta(w, m.delta);
      break;
    case 'error':
      w.u8(MessageType.Error)
        .u16(m.code)
        .str(m.message.slice(0, MAX_ERROR_MESSAGE_BYTES / 4), 2, MAX_ERROR_MESSAGE_BYTES);
      break;
  }
  return w.finish();
}

export function decodeMessage(frame: Uint8Array, ctx: DecodeContext = {}): Message {
  const r = new ByteReader(frame);
  const version = r.u8('version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(ErrorCode.UnsupportedVersion, `protocol version ${version}, this peer speaks ${PROTOCOL_VERSION}`);
  const type = r.u8('type');
  let m: Message;
  switch (type) {
    case MessageType.Hello: {
      const clientId = r.str(1, MAX_CLIENT_ID_BYTES, 'client id');
      if (clientId.length === 0) throw new ProtocolError(ErrorCode.Malformed, 'client id is empty');
      const token = r.str(2, MAX_TOKEN_BYTES, 'token');
      const modelHash = new Uint8Array(r.bytes(MODEL_HASH_BYTES, 'model hash'));
      m = { type: 'hello', clientId, token, modelHash, lastSyncedRound: r.u32('last synced round'), generatorVersion: r.u16('generator version') };
      break;
    }
    case MessageType.Welcome:
      m = { type: 'welcome', config: readConfig(r), committedRound: r.u32('committed round') };
      break;
    case MessageType.RoundAssignment: {
      const round = r.u32('round');
      const baseRound = r.u32('base round');
      const steps = r.u32('steps');
      if (round < 1 || baseRound >= round) throw new ProtocolError(ErrorCode.Malformed, `round ${round} with base ${baseRound}`);
      if (steps > MAX_PAIRS) throw new ProtocolError(ErrorCode.Malformed, `steps ${steps} > ${MAX_PAIRS}`);
      const delta = readDelta(r, ctx.k);
      const hasP = inRange(r.u8('probabilities flag'), 0, 1, 'probabilities flag');
      const probabilities = hasP ? readProbabilities(r, ctx.k) : null;
      m = { type: 'round', round, baseRound, steps, delta, probabilities };
      break;
    }
    case MessageType.Upload: {
      const round = r.u32('round');
      const examples = r.u32('examples');
      const lossBeforeSum = finite(r.f64('loss-before sum'), 'loss-before sum');
      const lossBeforeCount = r.u32('loss-before count');
      const lossAfterSum = finite(r.f64('loss-after sum'), 'loss-after sum');
      const lossAfterCount = r.u32('loss-after count');
      const digestRound = r.u32('digest round');
      const digest = new Uint8Array(r.bytes(DIGEST_BYTES, 'digest'));
      const count = r.u32('pair count');
      if (count > MAX_PAIRS) throw new ProtocolError(ErrorCode.TooLarge, `${count} pairs, at most ${MAX_PAIRS}`);
      const bits = inRange(r.u8('index bits'), 1, 24, 'index bits');
      if (ctx.k !== undefined && bits > seedIndexBits(ctx.k)) {
        throw new ProtocolError(ErrorCode.SeedOutOfRange, `indices of ${bits} bits, K = ${ctx.k} needs ${seedIndexBits(ctx.k)}`);
      }
      const seeds = unpackIndices(r.bytes(Math.ceil((count * bits) / 8), 'seed indices'), count, bits);
      const pairs = new Array<{ seed: number; g: number }>(count);
      for (let n = 0; n < count; n++) {
        const seed = seeds[n];
        if (ctx.k !== undefined && seed >= ctx.k) throw new ProtocolError(ErrorCode.SeedOutOfRange, `pair ${n}: seed index ${seed} ≥ K = ${ctx.k}`);
        const g = r.f32('g');
        if (!Number.isFinite(g)) throw new ProtocolError(ErrorCode.NonFinite, `pair ${n}: g is ${g}`);
        pairs[n] = { seed, g };
      }
      m = { type: 'upload', round, examples, lossBeforeSum, lossBeforeCount, lossAfterSum, lossAfterCount, digestRound, digest, pairs };
      break;
    }
    case MessageType.UploadAck: {
      const round = r.u32('round');
      const status = uploadStatuses[r.u8('upload status')];
      const digest = digestStatuses[r.u8('digest status')];
      if (status === undefined || digest === undefined) throw new ProtocolError(ErrorCode.Malformed, 'unknown ack status');
      m = { type: 'ack', round, status, digest };
      break;
    }
    case MessageType.RoundResult:
      m = {
        type: 'result',
        round: r.u32('round'),
        participants: r.u32('participants'),
        examples: r.u32('examples'),
        lossBefore: r.f64('loss before'),
        lossAfter: r.f64('loss after'),
      };
      break;
    case MessageType.Sync: {
      const round = r.u32('round');
      const baseRound = r.u32('base round');
      const finished = inRange(r.u8('finished'), 0, 1, 'finished') === 1;
      if (baseRound > round) throw new ProtocolError(ErrorCode.Malformed, `sync to ${round} from ${baseRound}`);
      m = { type: 'sync', round, baseRound, finished, delta: readDelta(r, ctx.k) };
      break;
    }
    case MessageType.Error: {
      const code = r.u16('error code');
      const message = r.str(2, MAX_ERROR_MESSAGE_BYTES, 'error message');
      m = { type: 'error', code: isKnownErrorCode(code) ? code : ErrorCode.Internal, message: isKnownErrorCode(code) ? message : `(code ${code}) ${message}` };
      break;
    }
    default:
      throw new ProtocolError(ErrorCode.UnknownType, `unknown message type ${type}`);
  }
  r.end();
  return m;
}
