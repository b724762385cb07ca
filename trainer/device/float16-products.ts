// A float16 forward over float32 weights: every MatMul and Gemm of the device graph whose inputs are
// float32 runs on float16 copies of them and hands float32 back, so normalisations, softmax and the loss
// stay float32 while the products (nearly all of a forward's FLOPs) run at the GPU's half-precision rate.
// The weights those products read (and transposes of them: a tied output projection) are slices of one
// float16 copy of the span, cast at the start of the forward: 6 B a parameter for the cast, then 6 B for a
// product's weight (its float16 slice read, written and read again) where float32 moves 12. A copy kept beside
// the weights and written by each pass would move the same bytes per step (ONNX Runtime runs the pass's
// Cast as a kernel of its own) for half the weights' memory more, so the forward casts. Replicas are
// unaffected: they are rebuilt from committed coefficients on the host; only the losses a client
// measures (and so its g) carry float16 rounding.
import * as ort from 'onnxruntime-node';
import { DataType, encodeGraph, node, toNumber, valueInfo, type onnxTypes } from '../model/onnx';
import { errorMessage } from '../../protocol/errors';

const PRODUCTS = new Set(['MatMul', 'Gemm']);
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);
const BOOL_OUT = new Set(['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or', 'Xor', 'IsNaN', 'IsInf']);
/** Default-domain ops whose first output has their first input's element type. */
const SAME_AS_FIRST = new Set([
  'Abs',
  'Add',
  'Clip',
  'Concat',
  'Cos',
  'CumSum',
  'Div',
  'Erf',
  'Exp',
  'Expand',
  'Flatten',
  'Gather',
  'GatherElements',
  'Gelu',
  'Identity',
  'LayerNormalization',
  'Log',
  'MatMul',
  'Gemm',
  'Max',
  'Min',
  'Mul',
  'Neg',
  'Pad',
  'Pow',
  'Reciprocal',
  'ReduceMax',
  'ReduceMean',
  'ReduceSum',
  'ReduceLogSumExp',
  'Relu',
  'Reshape',
  'RMSNormalization',
  'Sigmoid',
  'Sin',
  'Slice',
  'Softmax',
  'Split',
  'Sqrt',
  'Squeeze',
  'Sub',
  'Tanh',
  'Tile',
  'Transpose',
  'Trilu',
  'Unsqueeze',
]);

/**
 * The element type of each value where it follows for sure from the graph's inputs, initializers and
 * ops; a value left out is unknown (a product reading one stays float32).
 */
function knownTypes(graph: onnxTypes.Graph): Map<string, number> {
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
 * so its float32 products run in float16, their weights (and transposes of weights) cut from one float16
 * copy of the span. Returns how many products were converted.
 */
export function productsInFloat16(graph: onnxTypes.Graph, span: string): number {
  const types = knownTypes(graph);
  const producer = new Map<string, onnxTypes.Node>();
  for (const n of graph.node) for (const o of n.output) producer.set(o, n);
  const p = 'fedkseed_f16/';
  const halfSpan = `${p}span`;
  const weightNodes: onnxTypes.Node[] = [];
  const halves = new Map<string, string>();

  /**
   * A weight cut from the span, or a Transpose of one (a tied output projection): the same from the
   * float16 copy; null if `value` is neither.
   */
  const halfWeight = (value: string): string | null => {
    const made = halves.get(value);
    if (made !== undefined) return made;
    const from = producer.get(value);
    if (from?.opType === 'Transpose' && (!from.domain || from.domain === 'ai.onnx')) {
      const inner = halfWeight(from.input[0]);
      if (inner === null) return null;
      const transpose = node('Transpose', [inner], [`${p}${value}`], `${p}${value}`);
      transpose.attribute = from.attribute;
      weightNodes.push(transpose);
      halves.set(value, `${p}${value}`);
      return `${p}${value}`;
    }
    const slice = from?.opType === 'Reshape' ? producer.get(from.input[0]) : undefined;
    if (!from || slice?.opType !== 'Slice' || slice.input[0] !== span) return null;
    const cut = `${p}${value}/slice`;
    weightNodes.push(node('Slice', [halfSpan, ...slice.input.slice(1)], [cut], cut));
    weightNodes.push(node('Reshape', [cut, from.input[1]], [`${p}${value}`], `${p}${value}/reshape`));
    halves.set(value, `${p}${value}`);
    return `${p}${value}`;
  };

  const rewritten: onnxTypes.Node[] = [];
  let converted = 0;
  for (const n of graph.node) {
    const floats = n.input.filter((i) => i !== '');
    if (!PRODUCTS.has(n.opType) || (n.domain && n.domain !== 'ai.onnx') || !floats.every((i) => types.get(i) === DataType.FLOAT)) {
      rewritten.push(n);
      continue;
    }
    n.input = n.input.map((input) => {
      if (input === '') return input;
      let half = halves.get(input);
      if (half === undefined) {
        half = halfWeight(input) ?? `${p}${input}/cast`;
        if (half.endsWith('/cast')) rewritten.push(node('Cast', [input], [half], half, { to: DataType.FLOAT16 }));
        halves.set(input, half);
      }
      return half;
    });
    const out = n.output[0];
    n.output[0] = `${p}${out}`;
    rewritten.push(n, node('Cast', [n.output[0]], [out], `${p}${out}/float32`, { to: DataType.FLOAT }));
    converted++;
  }
  const head = weightNodes.length > 0 ? [node('Cast', [span], [halfSpan], halfSpan, { to: DataType.FLOAT16 }), ...weightNodes] : [];
  graph.node = [...head, ...rewritten];
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
