// The float-path perturbation of docs/zo-engine.md as an ONNX graph, so an execution provider can apply
// w += s·z next to weights it keeps on the device. Every step is an ONNX op on exact types: the counter
// hash in uint32 (Mul wraps mod 2^32, BitShift, BitwiseXor/And from opset 18), the table as a float32
// initializer read by Gather (its entries are small integers, exact in float32), then one float Mul and one
// float Add per seed, each a separate node so its result is rounded to float32 as the contract requires:
//   out = fl32(w + fl32(s'·Zq[index(key, offset + t)]))          applied seed after seed, in input order
// Inputs: w float32 [n] (any n), key_k uint32 [1], scale_k float32 [1] = fl32(s_k/4096) (tableScale), and
// pair_offset uint32 [1] = offset/2 (offset: the even global index of w[0]). Output: w_out float32 [n].
import * as ort from 'onnxruntime-node';
import { PAIR_MULTIPLIER, ZQ } from '../zo/generator';
import { checkOffset, tableScale } from '../zo/kernels';
import { createModel, DataType, encodeModel, floatTensor, int64Tensor, node, rawTensor, valueInfo, type onnxTypes } from '../model/onnx';
import { createWithProviders, type ProviderReport, type ProviderRequest } from './providers';

/** Opset 18: the first with BitwiseXor/BitwiseAnd. */
export const PERTURBATION_OPSET = 18;
export const MAX_FUSED_SEEDS = 8;

export const PERTURBATION_NAMES = {
  weights: 'w',
  pairOffset: 'pair_offset',
  key: (k: number) => `key_${k}`,
  scale: (k: number) => `scale_${k}`,
  output: 'w_out',
} as const;

const FMIX_MUL_1 = 0x85ebca6b;
const FMIX_MUL_2 = 0xc2b2ae35;

function uint32Scalar(name: string, value: number): onnxTypes.Tensor {
  return rawTensor(name, DataType.UINT32, [1], new Uint8Array(Uint32Array.of(value >>> 0).buffer));
}

/**
 * Builds the graph applying `seeds` perturbations in order (1: perturb, 2: the fused restore/update pass).
 * The pair premix is computed once and shared by every seed, as in the kernels.
 */
export function buildPerturbationGraph(seeds = 1): Uint8Array {
  if (!Number.isInteger(seeds) || seeds < 1 || seeds > MAX_FUSED_SEEDS) {
    throw new RangeError(`seeds must be an integer in 1..${MAX_FUSED_SEEDS}, got ${seeds}`);
  }
  const N = PERTURBATION_NAMES;
  const nodes: onnxTypes.Node[] = [];
  const add = (op: string, inputs: string[], output: string, attrs: Record<string, number | string> = {}): string => {
    nodes.push(node(op, inputs, [output], output, attrs));
    return output;
  };
  const shiftRight = (h: string, by: string, output: string): string => add('BitShift', [h, by], output, { direction: 'RIGHT' });
  const xorShift = (h: string, by: string, tag: string): string => add('BitwiseXor', [h, shiftRight(h, by, `${tag}_sh`)], `${tag}_x`);

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
    const step = add('Mul', [N.scale(k), z], `${t}_step`);
    w = add('Add', [w, step], k === seeds - 1 ? N.output : `${t}_w`);
  }

  const inputs = [valueInfo(N.weights, DataType.FLOAT, ['n']), valueInfo(N.pairOffset, DataType.UINT32, [1])];
  for (let k = 0; k < seeds; k++) inputs.push(valueInfo(N.key(k), DataType.UINT32, [1]), valueInfo(N.scale(k), DataType.FLOAT, [1]));
  const model = createModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: PERTURBATION_OPSET }],
    producerName: 'fedkseed',
    graph: { name: `perturb_${seeds}`, node: nodes, initializer: initializers, input: inputs, output: [valueInfo(N.output, DataType.FLOAT, ['n'])] },
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
}

/** A session over the perturbation graph: the reference runner for tests, benchmarks and device checks. */
export class PerturbationGraphSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly seeds: number,
    readonly providerReport: ProviderReport,
  ) {}

  static async create(options: PerturbationGraphOptions = {}): Promise<PerturbationGraphSession> {
    const seeds = options.seeds ?? 1;
    const bytes = buildPerturbationGraph(seeds);
    const { value, report } = await createWithProviders(options.executionProviders ?? 'cpu', (ep) =>
      ort.InferenceSession.create(bytes, {
        executionProviders: [ep],
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
        ...(options.intraOpNumThreads ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      }),
    );
    return new PerturbationGraphSession(value, seeds, report);
  }

  /** Feeds of one run; `w` is wrapped, not copied. */
  feeds(w: Float32Array, offset: number, terms: readonly SeedTerm[]): Record<string, ort.Tensor> {
    checkOffset(offset);
    if (terms.length !== this.seeds) throw new RangeError(`this graph applies ${this.seeds} seed(s), got ${terms.length}`);
    if (offset + w.length > 2 ** 32) throw new RangeError('offset + length exceeds the 2^32 index space');
    const N = PERTURBATION_NAMES;
    const feeds: Record<string, ort.Tensor> = {
      [N.weights]: new ort.Tensor('float32', w, [w.length]),
      [N.pairOffset]: new ort.Tensor('uint32', Uint32Array.of(offset / 2), [1]),
    };
    terms.forEach((term, k) => {
      feeds[N.key(k)] = new ort.Tensor('uint32', Uint32Array.of(term.key >>> 0), [1]);
      feeds[N.scale(k)] = new ort.Tensor('float32', Float32Array.of(tableScale(term.s)), [1]);
    });
    return feeds;
  }

  /**
   * Returns w after the seeds, in order. With `out` (same length as w, not w itself) the result is
   * written there, pre-allocated; otherwise a new array comes back.
   */
  async apply(w: Float32Array, offset: number, terms: readonly SeedTerm[], out?: Float32Array): Promise<Float32Array> {
    const feeds = this.feeds(w, offset, terms);
    if (out) {
      if (out.length !== w.length) throw new RangeError('out must have the length of w');
      if (out.buffer === w.buffer) throw new RangeError('out must not share memory with w');
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
