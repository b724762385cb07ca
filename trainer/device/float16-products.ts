// A float16 forward over float32 weights. Every MatMul and Gemm whose inputs are float32 runs in float16,
// and so do the ops after it that are exact or well-conditioned in half precision (bias additions,
// activations, head reshapes, attention scaling) as long as their other inputs are constants or weights:
// an op that also reads a float32 activation (the residual stream, the attention mask) stays float32, as
// do normalisations, softmax and the loss. Float16 thus runs in regions from a product on, with one cast
// in and one out, not around every product. The product that makes the logits stays float32: float16's
// spacing at |logit| ≈ 64 is 0.06, which would drown the loss differences a ZO step measures.
//
// The weights float16 ops read are slices of one float16 copy of the span, cast at the forward's start:
// 6 B a parameter for the cast, then 6 B for such a weight (its slice read, written and read again) where
// float32 moves 12. A copy kept beside the weights and written by each pass would move the same bytes per
// step (onnxruntime runs the pass's Cast as a kernel of its own) for half the weights' memory more, so the
// forward casts. Replicas are unaffected: they are rebuilt from committed coefficients on the host; only
// the losses a client measures (and so its g) carry float16 rounding.
import * as ort from 'onnxruntime-node';
import { DataType, encodeGraph, node, toNumber, valueInfo, type onnxTypes } from '../model/onnx';
import { errorMessage } from '../../protocol/errors';

const PRODUCTS = new Set(['MatMul', 'Gemm']);
/** Ops that only move or reshape their first input (the logits' way back to their product). */
const VIEWS = new Set(['Reshape', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'Flatten']);
/**
 * Ops that stay in float16 after a product (bias additions, activations, head reshapes, attention
 * scaling): exact or well-conditioned in half precision. Normalisations, softmax, reductions, powers,
 * exponentials and logarithms are not among them: they read float32.
 */
const HALF_FOLLOWERS = new Set(
  'Add Sub Mul Div Neg Relu Gelu Tanh Erf Sigmoid Where Reshape Transpose Split Slice Squeeze Unsqueeze Concat Expand Identity Gather'.split(' '),
);
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);
const BOOL_OUT = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
/** Default-domain ops whose first output has their first input's element type. */
const SAME_AS_FIRST = new Set(
  'Abs Add Clip Concat Cos CumSum Div Erf Exp Expand Flatten Gather GatherElements Gelu Identity LayerNormalization Log MatMul Gemm Max Min Mul Neg Pad Pow Reciprocal ReduceMax ReduceMean ReduceSum ReduceLogSumExp Relu Reshape RMSNormalization Sigmoid Sin Slice Softmax Split Sqrt Squeeze Sub Tanh Tile Transpose Trilu Unsqueeze'.split(
    ' ',
  ),
);

/**
 * The element type of each value where it follows for sure from the graph's inputs, initializers and
 * ops; a value left out is unknown (a product reading one stays float32).
 */
export function elementTypes(graph: onnxTypes.Graph): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of graph.input) if (v.type?.tensorType?.elemType) types.set(v.name, v.type.tensorType.elemType);
  for (const t of graph.initializer) types.set(t.name, t.dataType);
  for (const n of graph.node) {
    const out = n.output[0];
    if (!out) continue;
    const attr = (name: string): onnxTypes.Attribute | undefined => n.attribute.find((a) => a.name === name);
    let type: number | undefined;
    if (n.domain && n.domain !== 'ai.onnx') type = undefined;
    else if (n.opType === 'Cast') type = toNumber(attr('to')?.i);
    else if (n.opType === 'Constant') type = attr('value')?.t?.dataType;
    else if (INT64_OUT.has(n.opType)) type = DataType.INT64;
    else if (BOOL_OUT.has(n.opType)) type = DataType.BOOL;
    else if (n.opType === 'Where') type = types.get(n.input[1]);
    else if (SAME_AS_FIRST.has(n.opType)) type = types.get(n.input[0]);
    if (type !== undefined) {
      types.set(out, type);
      if (n.opType === 'Split') for (const o of n.output) types.set(o, type);
    }
  }
  return types;
}

/**
 * Rewrites `graph` (a device graph: weights are Reshape(Slice(span, …)) of the float32 span input `span`)
 * so its float32 products, but the one making `logits`, run in float16 with the ops that follow them as
 * far as half precision is safe, their weights cut from one float16 copy of the span. Returns how many
 * products were converted.
 */
export function productsInFloat16(graph: onnxTypes.Graph, span: string, logits: string): number {
  const types = elementTypes(graph);
  const producer = new Map<string, onnxTypes.Node>();
  for (const n of graph.node) for (const o of n.output) producer.set(o, n);
  // The product that makes the logits stays float32 (see the top of this file).
  let head = producer.get(logits);
  while (head && !PRODUCTS.has(head.opType) && VIEWS.has(head.opType)) head = producer.get(head.input[0]);
  const logitsProduct = head && PRODUCTS.has(head.opType) ? head : null;
  const p = 'fedkseed_f16/';
  const halfSpan = `${p}span`;
  const weightNodes: onnxTypes.Node[] = [];
  const halves = new Map<string, string>();

  /** The Reshape(Slice(span)) that cuts weight `value` from the span; null if `value` is not a weight. */
  const weightCut = (value: string): { readonly reshape: onnxTypes.Node; readonly slice: onnxTypes.Node } | null => {
    const reshape = producer.get(value);
    const slice = reshape?.opType === 'Reshape' ? producer.get(reshape.input[0]) : undefined;
    return reshape && slice?.opType === 'Slice' && slice.input[0] === span ? { reshape, slice } : null;
  };
  /** A weight cut from the span: the same cut from its float16 copy (toHalf keeps it); null if `value` is not one. */
  const halfWeight = (value: string): string | null => {
    const found = weightCut(value);
    if (found === null) return null;
    const { reshape: from, slice } = found;
    const cut = `${p}${value}/slice`;
    weightNodes.push(node('Slice', [halfSpan, ...slice.input.slice(1)], [cut], cut));
    weightNodes.push(node('Reshape', [cut, from.input[1]], [`${p}${value}`], `${p}${value}/reshape`));
    return `${p}${value}`;
  };

  const constants = new Set([...graph.initializer.map((t) => t.name), ...graph.node.filter((n) => n.opType === 'Constant').flatMap((n) => n.output)]);
  const rewritten: onnxTypes.Node[] = [];
  /** Values that exist only as float16 (their node runs in float16): cast back where float32 is read. */
  const halfOnly = new Set<string>();
  const floatAgain = new Set<string>();
  const toFloat = (value: string): void => {
    if (!halfOnly.has(value) || floatAgain.has(value)) return;
    rewritten.push(node('Cast', [halves.get(value) as string], [value], `${p}${value}/float32`, { to: DataType.FLOAT }));
    floatAgain.add(value);
  };
  /** `value` as float16: already so, a weight's float16 slice, or cast (a constant's cast is folded at session creation). */
  const toHalf = (value: string): string => {
    let half = halves.get(value) ?? halfWeight(value);
    if (half === null) {
      half = `${p}${value}/cast`;
      rewritten.push(node('Cast', [value], [half], half, { to: DataType.FLOAT16 }));
    }
    halves.set(value, half);
    return half;
  };
  const isFloat = (value: string): boolean => types.get(value) === DataType.FLOAT;
  const defaultDomain = (n: onnxTypes.Node): boolean => !n.domain || n.domain === 'ai.onnx';
  /**
   * A product runs in float16 when its inputs are float32; another op of HALF_FOLLOWERS when each float
   * input is float16 already or a constant or weight, and one is float16: a float32 activation (the
   * residual stream, the attention mask) keeps the op float32.
   */
  const runsInHalf = (n: onnxTypes.Node): boolean => {
    if (!defaultDomain(n) || n === logitsProduct) return false;
    const inputs = n.input.filter((i) => i !== '');
    if (PRODUCTS.has(n.opType)) return inputs.every(isFloat);
    if (!HALF_FOLLOWERS.has(n.opType) || !n.output.every((o) => o === '' || isFloat(o))) return false;
    const floats = inputs.filter(isFloat);
    return floats.some((i) => halfOnly.has(i)) && floats.every((i) => halfOnly.has(i) || constants.has(i) || weightCut(i) !== null);
  };

  let converted = 0;
  for (const n of graph.node) {
    if (!runsInHalf(n)) {
      for (const input of n.input) toFloat(input);
      rewritten.push(n);
      continue;
    }
    n.input = n.input.map((input) => (input !== '' && isFloat(input) ? toHalf(input) : input));
    n.output = n.output.map((out) => {
      if (out === '') return out;
      halves.set(out, `${p}${out}`);
      halfOnly.add(out);
      return `${p}${out}`;
    });
    rewritten.push(n);
    if (PRODUCTS.has(n.opType)) converted++;
  }
  for (const out of graph.output) toFloat(out.name);
  const cast = weightNodes.length > 0 ? [node('Cast', [span], [halfSpan], halfSpan, { to: DataType.FLOAT16 }), ...weightNodes] : [];
  graph.node = [...cast, ...rewritten];
  return converted;
}

/**
 * Whether the device runs float16 products: null if a float16 MatMul gives the exact product of small
 * integers there, else why not (an adapter without shader-f16 fails to compile the kernel at its first
 * run, not at session creation, so the probe runs one).
 */
export async function float16ProductsUnsupported(options: ort.InferenceSession.SessionOptions): Promise<string | null> {
  const n = 8;
  const graph = encodeGraph({
    name: 'float16_probe',
    node: [
      node('Cast', ['a'], ['a16'], 'a16', { to: DataType.FLOAT16 }),
      node('MatMul', ['a16', 'a16'], ['y16'], 'y16'),
      node('Cast', ['y16'], ['y'], 'y', { to: DataType.FLOAT }),
    ],
    input: [valueInfo('a', DataType.FLOAT, [n, n])],
    output: [valueInfo('y', DataType.FLOAT, [n, n])],
  });
  let session: ort.InferenceSession | null = null;
  try {
    session = await ort.InferenceSession.create(graph, options);
    const a = Float32Array.from({ length: n * n }, (_, i) => (i % 5) - 2);
    const { y } = await session.run({ a: new ort.Tensor('float32', a, [n, n]) });
    const got = y.data as Float32Array;
    for (let r = 0; r < n; r++)
      for (let c = 0; c < n; c++) {
        let want = 0;
        for (let k = 0; k < n; k++) want += a[r * n + k] * a[k * n + c];
        if (got[r * n + c] !== want) return `a float16 product on this adapter gave ${got[r * n + c]} where ${want} is exact`;
      }
    return null;
  } catch (e) {
    return `this adapter does not run float16 products (${errorMessage(e).split('\n')[0]})`;
  } finally {
    await session?.release();
  }
}
