// The float-path perturbation of docs/zo-engine.md as an ONNX graph, so an execution provider can apply
// w += s·z next to weights it keeps on the device. Every step is an ONNX op on exact types: the counter
// hash in uint32 (Mul wraps mod 2^32, BitShift, BitwiseXor/And from opset 18), the table as a float32
// initializer read by Gather (its entries are small integers, exact in float32), then one float Mul and one
// float Add per seed, each a separate node so its result is rounded to float32 as the contract requires:
//   out = fl32(w + fl32(s'·Zq[index(key, offset + t)]))          applied seed after seed, in input order
// Inputs: w float32 [n] (any n), key_k uint32 [1], scale_k float32 [1] = fl32(s_k/4096) (tableScale), and
// pair_offset uint32 [1] = offset/2 (offset: the even global index of w[0]). Output: w_out float32 [n].
//
// Two forms compute the same bits. 'bitwise' uses BitwiseXor/BitShift/BitwiseAnd (CPU, CUDA). onnxruntime's
// WebGPU provider has no bitwise kernels (1.30 places them on the CPU), so 'arithmetic' computes fmix32 with
// what it does run on uint32/int32: Add, Sub, Mul (wraps mod 2^32), Div (a shift by 2^k), Cast, and xor of
// two bytes as a Gather from a 65,536-entry table T[a·256 + b] = (a ^ b) << 8·j, one table per byte place.
// See buildArithmeticGraph and docs/gpu.md.
import * as ort from 'onnxruntime-node';
import { PAIR_MULTIPLIER, ZQ } from '../zo/generator';
import { arithmeticHash, arithmeticHashInitializers, FMIX_MUL_1, FMIX_MUL_2, keyByteFeeds, keyByteName, uint32Scalar } from './arithmetic-hash';
import { checkOffset, tableScale } from '../zo/kernels';
import { createModel, DataType, encodeModel, floatTensor, int64Tensor, nodeAdder, rawTensor, usedInitializers, valueInfo, type onnxTypes } from '../model/onnx';
import { createWithProviders, type ProviderReport, type ProviderRequest } from './providers';

/** Opset 18: the first with BitwiseXor/BitwiseAnd. */
export const PERTURBATION_OPSET = 18;
export const MAX_FUSED_SEEDS = 8;

export const PERTURBATION_NAMES = {
  weights: 'w',
  pairOffset: 'pair_offset',
  key: (k: number) => `key_${k}`,
  scale: (k: number) => `scale_${k}`,
  /** Shaped graphs: each index's shape multiplier (a power of two; 0 in the gaps between tensors). */
  multiplier: 'm',
  output: 'w_out',
  /** Arithmetic form: the number of pairs (int32 scalar) and the key's bytes, pre-combined (int32 [1] each). */
  pairCount: 'pair_count',
  keyByte: keyByteName,
  /** Device passes (buildDevicePassGraph): seed k's table values fl32(Zq[index]) from an earlier pass (float32 [n]). */
  cachedZ: (k: number) => `z_${k}`,
  /** Device passes: the last seed's table values, when it was hashed (float32 [n]). */
  zOutput: 'z_out',
} as const;

/** 'bitwise': BitwiseXor/BitShift ops (CPU, CUDA); 'arithmetic': integer arithmetic and table gathers (WebGPU). */
export type HashForm = 'bitwise' | 'arithmetic';

/** The hash form a provider runs entirely on its device. */
export function hashFormFor(provider: string): HashForm {
  return provider === 'webgpu' ? 'arithmetic' : 'bitwise';
}

/**
 * Builds the graph applying `seeds` perturbations in order (1: perturb, 2: the fused restore/update pass).
 * The pair premix is computed once and shared by every seed, as in the kernels.
 */
export function buildPerturbationGraph(seeds = 1, form: HashForm = 'bitwise', shaped = false): Uint8Array {
  if (!Number.isInteger(seeds) || seeds < 1 || seeds > MAX_FUSED_SEEDS) {
    throw new RangeError(`seeds must be an integer in 1..${MAX_FUSED_SEEDS}, got ${seeds}`);
  }
  if (form === 'arithmetic') return buildArithmeticGraph(seeds, shaped);
  const N = PERTURBATION_NAMES;
  const nodes: onnxTypes.Node[] = [];
  const add = nodeAdder(nodes);
  const shiftRight = (h: string, by: string, output: string): string => add('BitShift', [h, by], output, { direction: 'RIGHT' });
  const xorShift = (h: string, by: string, tag: string): string => add('BitwiseXor', [h, shiftRight(h, by, `${tag}_sh`)], `${tag}_x`);
  const shapedScale = (k: number): string => (shaped ? add('Mul', [N.scale(k), N.multiplier], `s${k}_scale_m`) : N.scale(k));

  const initializers: onnxTypes.Tensor[] = [
    floatTensor('zq', ZQ, [ZQ.length]),
    uint32Scalar('u_pair_mul', PAIR_MULTIPLIER),
    uint32Scalar('u_fmix_1', FMIX_MUL_1),
    uint32Scalar('u_fmix_2', FMIX_MUL_2),
    uint32Scalar('u_13', 13),
    uint32Scalar('u_16', 16),
    uint32Scalar('u_low16', 0xffff),
    int64Tensor('i_0', [0], []),
    int64Tensor('i_1', [1], []),
    int64Tensor('i_1v', [1]),
    int64Tensor('i_2v', [2]),
    int64Tensor('i_0v', [0]),
    int64Tensor('i_flat', [-1]),
  ];

  // Pair indices p = pair_offset + 0..ceil(n/2)-1 (a pair of parameters shares one 32-bit hash word).
  const n = add('Shape', [N.weights], 'n');
  const pairs = add('Squeeze', [add('Div', [add('Add', [n, 'i_1v'], 'n_plus_1'), 'i_2v'], 'pairs_v')], 'pairs');
  const local = add('Cast', [add('Range', ['i_0', pairs, 'i_1'], 'pair_range')], 'pair_local', { to: DataType.UINT32 });
  const premix = add('Mul', [add('Add', [local, N.pairOffset], 'pair_index'), 'u_pair_mul'], 'premix');

  let w: string = N.weights;
  for (let k = 0; k < seeds; k++) {
    const t = `s${k}`;
    let h = add('BitwiseXor', [premix, N.key(k)], `${t}_h0`);
    h = xorShift(h, 'u_16', `${t}_a`);
    h = add('Mul', [h, 'u_fmix_1'], `${t}_m1`);
    h = xorShift(h, 'u_13', `${t}_b`);
    h = add('Mul', [h, 'u_fmix_2'], `${t}_m2`);
    h = xorShift(h, 'u_16', `${t}_c`);
    // Even parameter: the high half-word; odd: the low one. Interleave [hi, lo] per pair, cut to n.
    const hi = add('Cast', [shiftRight(h, 'u_16', `${t}_hi_u`)], `${t}_hi`, { to: DataType.INT32 });
    const lo = add('Cast', [add('BitwiseAnd', [h, 'u_low16'], `${t}_lo_u`)], `${t}_lo`, { to: DataType.INT32 });
    const both = add('Concat', [add('Unsqueeze', [hi, 'i_1v'], `${t}_hi2`), add('Unsqueeze', [lo, 'i_1v'], `${t}_lo2`)], `${t}_pairs`, { axis: 1 });
    const index = add('Slice', [add('Reshape', [both, 'i_flat'], `${t}_flat`), 'i_0v', n], `${t}_index`);
    const z = add('Gather', ['zq', index], `${t}_zq`, { axis: 0 });
    const step = add('Mul', [shapedScale(k), z], `${t}_step`);
    w = add('Add', [w, step], k === seeds - 1 ? N.output : `${t}_w`);
  }

  const inputs = [valueInfo(N.weights, DataType.FLOAT, ['n']), valueInfo(N.pairOffset, DataType.UINT32, [1])];
  if (shaped) inputs.push(valueInfo(N.multiplier, DataType.FLOAT, ['n']));
  for (let k = 0; k < seeds; k++) inputs.push(valueInfo(N.key(k), DataType.UINT32, [1]), valueInfo(N.scale(k), DataType.FLOAT, [1]));
  const model = createModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: PERTURBATION_OPSET }],
    producerName: 'fedkseed',
    graph: { name: `perturb_${seeds}`, node: nodes, initializer: initializers, input: inputs, output: [valueInfo(N.output, DataType.FLOAT, ['n'])] },
  });
  return encodeModel(model);
}

/**
 * The same function with no bitwise op, for providers without bitwise kernels (WebGPU): the hash of
 * trainer/device/arithmetic-hash.ts over the pairs pair_offset + 0..P−1, then the same Gather, Mul and Add.
 * Inputs: w float32 [2P] (even length), pair_offset uint32 [1], pair_count int32 scalar P, per seed k the
 * key bytes key_k_b0..b3 (int32 [1], from keyBytes) and scale_k float32 [1]. Output w_out float32 [2P].
 */
function buildArithmeticGraph(seeds: number, shaped: boolean): Uint8Array {
  return buildArithmetic(Array<SeedSource>(seeds).fill('hash'), shaped, false);
}

/**
 * Where a device pass takes seed k's table values fl32(Zq[index]) from: 'hash' computes them (the
 * arithmetic hash), 'cached' reads them from the input z_k, a float32 [n] tensor an earlier pass output.
 */
export type SeedSource = 'hash' | 'cached';

/**
 * The pass the device-resident loop runs: the arithmetic form, where a seed whose z is already on the
 * device (`cached`) costs one Mul and one Add instead of the hash, and the last seed, when hashed, also
 * returns its table values as `z_out` (float32 [n]) for the next passes of the same key. A ZO step then
 * hashes once (its new seed) instead of three times: the −2εz pass and the next step's restore/update
 * read z_out. Same bits as buildPerturbationGraph: the values are the same Gather from the same table,
 * and each Mul and Add is still its own node.
 */
export function buildDevicePassGraph(sources: readonly SeedSource[], shaped = false): Uint8Array {
  if (sources.length < 1 || sources.length > MAX_FUSED_SEEDS) throw new RangeError(`a pass applies 1..${MAX_FUSED_SEEDS} seeds, got ${sources.length}`);
  return buildArithmetic(sources, shaped, sources[sources.length - 1] === 'hash');
}

function buildArithmetic(sources: readonly SeedSource[], shaped: boolean, emitZ: boolean): Uint8Array {
  const seeds = sources.length;
  const hashed = sources.some((x) => x === 'hash');
  const N = PERTURBATION_NAMES;
  const nodes: onnxTypes.Node[] = [];
  const add = nodeAdder(nodes);
  // A shaped pass scales seed k's step by each index's multiplier: fl32(scale_k·m) is exact (m a power of two).
  const shapedScale = (k: number): string => (shaped ? add('Mul', [N.scale(k), N.multiplier], `s${k}_scale_m`) : N.scale(k));
  const int32Scalar = (name: string, value: number): onnxTypes.Tensor => rawTensor(name, DataType.INT32, [], new Uint8Array(Int32Array.of(value).buffer));
  const initializers: onnxTypes.Tensor[] = [
    floatTensor('zq', ZQ, [ZQ.length]),
    ...arithmeticHashInitializers(),
    int32Scalar('i_0', 0),
    int32Scalar('i_1', 1),
    int64Tensor('i_flat', [-1]),
  ];
  const hash = arithmeticHash(add);

  // Shared by every hashed seed: the premix bytes of the pair indices pair_offset + t.
  let base: string[] = [];
  if (hashed) {
    const local = add('Cast', [add('Range', ['i_0', N.pairCount, 'i_1'], 'pair_range')], 'pair_local', { to: DataType.UINT32 });
    base = hash.premix(add('Add', [local, N.pairOffset], 'pair_index'));
  }

  let w: string = N.weights;
  for (let k = 0; k < seeds; k++) {
    const t = `s${k}`;
    if (sources[k] === 'cached') {
      const step = add('Mul', [shapedScale(k), N.cachedZ(k)], `${t}_step`);
      w = add('Add', [w, step], k === seeds - 1 ? N.output : `${t}_w`);
      continue;
    }
    const pairIndex = hash.seedIndices(base, (j) => N.keyByte(k, j), t);
    const last = k === seeds - 1;
    const z = add('Gather', ['zq', add('Reshape', [pairIndex, 'i_flat'], `${t}_index`)], last && emitZ ? N.zOutput : `${t}_zq`, { axis: 0 });
    const step = add('Mul', [shapedScale(k), z], `${t}_step`);
    w = add('Add', [w, step], last ? N.output : `${t}_w`);
  }

  const inputs = [valueInfo(N.weights, DataType.FLOAT, ['n'])];
  if (hashed) inputs.push(valueInfo(N.pairOffset, DataType.UINT32, [1]), valueInfo(N.pairCount, DataType.INT32, []));
  if (shaped) inputs.push(valueInfo(N.multiplier, DataType.FLOAT, ['n']));
  for (let k = 0; k < seeds; k++) {
    if (sources[k] === 'cached') inputs.push(valueInfo(N.cachedZ(k), DataType.FLOAT, ['n']));
    else for (let j = 0; j < 4; j++) inputs.push(valueInfo(N.keyByte(k, j), DataType.INT32, [1]));
    inputs.push(valueInfo(N.scale(k), DataType.FLOAT, [1]));
  }
  const outputs = [valueInfo(N.output, DataType.FLOAT, ['n'])];
  if (emitZ) outputs.push(valueInfo(N.zOutput, DataType.FLOAT, ['n']));
  const model = createModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: PERTURBATION_OPSET }],
    producerName: 'fedkseed',
    graph: {
      name: `perturb_arith_${sources.map((x) => x[0]).join('')}`,
      node: nodes,
      // A graph of cached seeds only keeps none.
      initializer: usedInitializers(initializers, nodes),
      input: inputs,
      output: outputs,
    },
  });
  return encodeModel(model);
}

export interface SeedTerm {
  /** Seed key (seedKey(F, j)), unsigned 32-bit. */
  readonly key: number;
  /** The perturbation's real scale s (w += s·z). */
  readonly s: number;
}

export interface PerturbationGraphOptions {
  readonly seeds?: number;
  readonly executionProviders?: ProviderRequest;
  readonly intraOpNumThreads?: number;
  /** Default: the form the provider runs entirely on its device (hashFormFor). */
  readonly form?: HashForm;
}

/** Feeds of one run, besides `w`: the offset, the pair count (arithmetic form) and each seed's key and scale. */
export function perturbationFeeds(form: HashForm, seeds: number, length: number, offset: number, terms: readonly SeedTerm[]): Record<string, ort.Tensor> {
  checkOffset(offset);
  if (terms.length !== seeds) throw new RangeError(`this graph applies ${seeds} seed(s), got ${terms.length}`);
  if (offset + length > 2 ** 32) throw new RangeError('offset + length exceeds the 2^32 index space');
  const N = PERTURBATION_NAMES;
  const feeds: Record<string, ort.Tensor> = { [N.pairOffset]: new ort.Tensor('uint32', Uint32Array.of(offset / 2), [1]) };
  if (form === 'arithmetic') {
    if (length % 2 !== 0) throw new RangeError(`the arithmetic graph takes an even length, got ${length}`);
    feeds[N.pairCount] = new ort.Tensor('int32', Int32Array.of(length / 2), []);
  }
  terms.forEach((term, k) => {
    if (form === 'arithmetic') Object.assign(feeds, keyByteFeeds(k, term.key));
    else feeds[N.key(k)] = new ort.Tensor('uint32', Uint32Array.of(term.key >>> 0), [1]);
    feeds[N.scale(k)] = new ort.Tensor('float32', Float32Array.of(tableScale(term.s)), [1]);
  });
  return feeds;
}

/**
 * Feeds of one device pass (buildDevicePassGraph), besides `w`, the multipliers of a shaped pass and the
 * cached z_k of each cached seed: the offset and pair count when a seed is hashed, each hashed seed's key
 * bytes, every seed's scale. The span starts at global index 0 (offset 0), as DeviceWeights lays it out.
 */
export function devicePassFeeds(sources: readonly SeedSource[], length: number, terms: readonly SeedTerm[]): Record<string, ort.Tensor> {
  if (terms.length !== sources.length) throw new RangeError(`this pass applies ${sources.length} seed(s), got ${terms.length}`);
  if (length % 2 !== 0) throw new RangeError(`a device pass takes an even length, got ${length}`);
  if (length > 2 ** 32) throw new RangeError('the span exceeds the 2^32 index space');
  const N = PERTURBATION_NAMES;
  const feeds: Record<string, ort.Tensor> = {};
  if (sources.includes('hash')) {
    feeds[N.pairOffset] = new ort.Tensor('uint32', Uint32Array.of(0), [1]);
    feeds[N.pairCount] = new ort.Tensor('int32', Int32Array.of(length / 2), []);
  }
  terms.forEach((term, k) => {
    if (sources[k] === 'hash') Object.assign(feeds, keyByteFeeds(k, term.key));
    feeds[N.scale(k)] = new ort.Tensor('float32', Float32Array.of(tableScale(term.s)), [1]);
  });
  return feeds;
}

/** Session options that make onnxruntime refuse, instead of silently running on the CPU, a node its device cannot take. */
export function deviceOnlyOptions(provider: string): ort.InferenceSession.SessionOptions {
  return provider === 'cpu' ? {} : { extra: { session: { disable_cpu_ep_fallback: '1' } } };
}

/** A session over the perturbation graph: the reference runner for tests, benchmarks and device checks. */
export class PerturbationGraphSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly seeds: number,
    readonly form: HashForm,
    readonly providerReport: ProviderReport,
  ) {}

  static async create(options: PerturbationGraphOptions = {}): Promise<PerturbationGraphSession> {
    const seeds = options.seeds ?? 1;
    let form: HashForm = 'bitwise';
    const { value, report } = await createWithProviders(options.executionProviders ?? 'cpu', (ep) => {
      form = options.form ?? hashFormFor(ep);
      return ort.InferenceSession.create(buildPerturbationGraph(seeds, form), {
        executionProviders: [ep],
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        ...(options.form === undefined ? deviceOnlyOptions(ep) : {}),
        ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      });
    });
    return new PerturbationGraphSession(value, seeds, form, report);
  }

  /** Feeds of one run; `w` is wrapped, not copied (the arithmetic form takes an even length). */
  feeds(w: Float32Array, offset: number, terms: readonly SeedTerm[]): Record<string, ort.Tensor> {
    const feeds = perturbationFeeds(this.form, this.seeds, w.length, offset, terms);
    feeds[PERTURBATION_NAMES.weights] = new ort.Tensor('float32', w, [w.length]);
    return feeds;
  }

  /**
   * Returns w after the seeds, in order. With `out` (same length as w, not w itself) the result is
   * written there, pre-allocated; otherwise a new array comes back. The arithmetic form runs an odd
   * length padded by one element, which is dropped.
   */
  async apply(w: Float32Array, offset: number, terms: readonly SeedTerm[], out?: Float32Array): Promise<Float32Array> {
    if (out) {
      if (out.length !== w.length) throw new RangeError('out must have the length of w');
      if (out.buffer === w.buffer) throw new RangeError('out must not share memory with w');
    }
    if (this.form === 'arithmetic' && w.length % 2 !== 0) {
      const padded = new Float32Array(w.length + 1);
      padded.set(w);
      const result = (await this.apply(padded, offset, terms)).subarray(0, w.length);
      if (!out) return result;
      out.set(result);
      return out;
    }
    const feeds = this.feeds(w, offset, terms);
    if (out) {
      await this.session.run(feeds, { [PERTURBATION_NAMES.output]: new ort.Tensor('float32', out, [out.length]) });
      return out;
    }
    const result = await this.session.run(feeds, [PERTURBATION_NAMES.output]);
    return result[PERTURBATION_NAMES.output].data as Float32Array;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
