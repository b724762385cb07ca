// The float16 forward (trainer/device/float16-products.ts) as a graph: every product reads float16 and
// hands float32 back, weights come from one float16 copy of the span, the rest of the graph is untouched,
// a product whose inputs' types are not known stays float32, and the weights' traffic is bounded.
// The graphs run here on the CPU provider; test/integration/device-float16.test.ts runs them on WebGPU.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { DEVICE_NAMES, rewriteForDevice } from '../../trainer/device/device-graph';
import { elementTypes, productsInFloat16 } from '../../trainer/device/float16-products';
import { forwardCost } from '../../trainer/device/graph-cost';
import { DataType, decodeModel, encodeGraph, node, toNumber, valueInfo, type onnxTypes } from '../../trainer/model/onnx';
import { gpt2Bytes, loadModel, parseModel, rewriteForTraining, type LoadedModel } from '../../trainer/model';
import { bundledModelDir } from '../../trainer/paths';
import { ParameterSet } from '../../trainer/zo/parameters';

const shape = { batch: 2, seq: 16 };

async function builtGpt2(): Promise<LoadedModel> {
  const config = { vocab: 48, ctx: 16, dModel: 24, layers: 2, heads: 3, mlpRatio: 2, tiedEmbeddings: true, dtype: 'float32' as const, seed: 3 };
  return parseModel(Buffer.from(gpt2Bytes(config)), 'gpt2-24x2');
}

function deviceGraphs(model: LoadedModel, batch = shape.batch): { f32: Uint8Array; f16: Uint8Array; params: ParameterSet } {
  const params = new ParameterSet(model.weights, { kernel: 'js', resident: false });
  const training = rewriteForTraining(model);
  const at = { batch, seq: shape.seq };
  return { f32: rewriteForDevice(training, params, at), f16: rewriteForDevice(training, params, at, 'float16'), params };
}

const producers = (g: onnxTypes.Graph): Map<string, onnxTypes.Node> => new Map(g.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
const castTo = (n: onnxTypes.Node | undefined): number | undefined =>
  n?.opType === 'Cast' ? toNumber(n.attribute.find((a) => a.name === 'to')?.i) : undefined;

for (const [what, load] of [
  ['the bundled model', () => loadModel(join(bundledModelDir(), 'model.onnx'))],
  ['a GPT-2 builder model (tied embeddings)', builtGpt2],
] as const) {
  test(`${what}: products run in float16 (weights from the float16 span) but the logits' one; normalisations, softmax and the loss read float32`, async () => {
    const model = await load();
    const { f32, f16 } = deviceGraphs(model);
    const [a, b] = [decodeModel(f32).graph, decodeModel(f16).graph];
    const productsOf = (g: onnxTypes.Graph) => g.node.filter((n) => n.opType === 'MatMul' || n.opType === 'Gemm');
    assert.ok(productsOf(a).length > 1);
    assert.equal(productsOf(b).length, productsOf(a).length);
    const types = elementTypes(b);
    const from = producers(b);
    const half = productsOf(b).filter((p) => types.get(p.output[0]) === DataType.FLOAT16);
    const full = productsOf(b).filter((p) => types.get(p.output[0]) === DataType.FLOAT);
    // The one product left float32 makes the logits.
    assert.equal(full.length, 1);
    assert.equal(half.length, productsOf(b).length - 1);
    let logits = model.io.logits;
    while (from.get(logits) !== full[0]) logits = (from.get(logits) as onnxTypes.Node).input[0];
    let weightsFromHalfSpan = 0;
    for (const p of half) {
      for (const input of p.input.filter(Boolean)) {
        assert.equal(types.get(input), DataType.FLOAT16, `${p.name} reads ${input}`);
        // A weight: Reshape(Slice(Cast(span → float16))).
        const source = from.get(input);
        const slice = source?.opType === 'Reshape' ? from.get(source.input[0]) : undefined;
        if (slice?.opType !== 'Slice') continue;
        const span = from.get(slice.input[0]);
        assert.equal(castTo(span), DataType.FLOAT16);
        assert.equal(span?.input[0], DEVICE_NAMES.span);
        weightsFromHalfSpan++;
      }
    }
    assert.ok(weightsFromHalfSpan > 0, 'float16 products read weights from the float16 span');
    for (const n of b.node.filter((x) => ['LayerNormalization', 'Softmax', 'ReduceLogSumExp', 'ReduceMean', 'GatherElements', 'Pow'].includes(x.opType))) {
      assert.equal(types.get(n.input[0]), DataType.FLOAT, `${n.opType} ${n.name} reads float32`);
    }
    for (const o of b.output) assert.notEqual(types.get(o.name), DataType.FLOAT16, o.name);
    // Float16 stays on between products: fewer casts back to float32 than float16 products.
    const backToFloat = b.node.filter((n) => castTo(n) === DataType.FLOAT).length - a.node.filter((n) => castTo(n) === DataType.FLOAT).length;
    assert.ok(backToFloat < half.length, `${backToFloat} casts back for ${half.length} float16 products`);
    // Besides casts and the float16 weight slices, the graph is the float32 one.
    const rest = (g: onnxTypes.Graph) =>
      g.node
        .filter((n) => !['Cast', 'Slice', 'Reshape'].includes(n.opType))
        .map((n) => n.opType)
        .sort();
    assert.deepEqual(rest(b), rest(a));
    assert.deepEqual(
      b.output.map((o) => o.name),
      a.output.map((o) => o.name),
    );
  });
}

test('float16 products give the float32 losses within half-precision rounding (CPU provider), and not the same bits', async () => {
  const model = await builtGpt2();
  const { f32, f16, params } = deviceGraphs(model);
  const span = params.spanData();
  const B = shape.batch;
  const T = shape.seq;
  const feeds: Record<string, ort.Tensor> = {
    [DEVICE_NAMES.span]: new ort.Tensor('float32', span, [span.length]),
    [DEVICE_NAMES.targets]: new ort.Tensor(
      'int32',
      Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 1) % 48),
      [B, T, 1],
    ),
    [DEVICE_NAMES.lastIndex]: new ort.Tensor(
      'int32',
      Int32Array.from({ length: B }, (_, b) => b * T + T - 1),
      [B],
    ),
  };
  const losses = async (bytes: Uint8Array): Promise<Float32Array> => {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const io = model.io;
    const own: Record<string, ort.Tensor> = { ...feeds };
    for (const input of session.inputNames) {
      if (own[input]) continue;
      // The device graph takes the mask as int32 (device-graph.ts); ids and positions keep the model's type.
      const type = input === io.attentionMask.name ? 'int32' : input === io.inputIds.name ? io.inputIds.type : (io.positionIds?.type ?? 'int64');
      const values = Array.from({ length: B * T }, (_, i) => (input === io.inputIds.name ? (i * 5) % 48 : input === io.positionIds?.name ? i % T : 1));
      own[input] =
        type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [B, T]) : new ort.Tensor('int32', Int32Array.from(values), [B, T]);
    }
    const out = await session.run(own);
    await session.release();
    return out[DEVICE_NAMES.tokenLoss].data as Float32Array;
  };
  const [a, b] = [await losses(f32), await losses(f16)];
  assert.equal(b.length, a.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= 2e-3 * Math.abs(a[i]) + 1e-3, `token ${i}: ${a[i]} vs ${b[i]}`);
    if (a[i] !== b[i]) differ++;
  }
  assert.ok(differ > 0, 'the float16 graph computes in float16');
});

test('a product whose input type cannot be told stays float32; float32 inputs of known type are converted', () => {
  const g: onnxTypes.Graph = decodeModel(
    encodeGraph({
      name: 'mixed',
      node: [
        node('MysteryOp', ['x'], ['m'], 'mystery', {}, 'com.example'),
        node('MatMul', ['m', 'w'], ['unknown_product'], 'unknown_product'),
        node('Relu', ['x'], ['r'], 'relu'),
        node('MatMul', ['r', 'w'], ['known_product'], 'known_product'),
        node('Cast', ['x'], ['d'], 'to_double', { to: DataType.DOUBLE }),
        node('Cast', ['w'], ['wd'], 'w_double', { to: DataType.DOUBLE }),
        node('MatMul', ['d', 'wd'], ['double_product'], 'double_product'),
      ],
      input: [valueInfo('x', DataType.FLOAT, [2, 4]), valueInfo('w', DataType.FLOAT, [4, 4])],
      output: ['unknown_product', 'known_product', 'double_product'].map((o) =>
        valueInfo(o, o === 'double_product' ? DataType.DOUBLE : DataType.FLOAT, [2, 4]),
      ),
    }),
  ).graph;
  assert.equal(productsInFloat16(g, 'no_span', 'no_logits'), 1);
  const byName = new Map(g.node.map((n) => [n.name, n]));
  assert.deepEqual(byName.get('unknown_product')?.input, ['m', 'w']);
  assert.deepEqual(byName.get('double_product')?.input, ['d', 'wd']);
  const from = producers(g);
  for (const input of byName.get('known_product')?.input ?? []) assert.equal(castTo(from.get(input)), DataType.FLOAT16);
  // No weight is cut from a span here, so no float16 span is made.
  assert.ok(!g.node.some((n) => n.name === 'fedkseed_f16/span'));
});

test("a float16 forward's weights cost at most the span's cast more (6 B a parameter)", async () => {
  const model = await builtGpt2();
  const { f32, f16, params } = deviceGraphs(model);
  const [a, b] = [forwardCost(f32, DEVICE_NAMES.span), forwardCost(f16, DEVICE_NAMES.span)];
  const n = params.indexSpan;
  assert.equal(a.weightBytes, 12 * params.parameterCount + 3 * 8 * a.weightSlices);
  // The span's Cast reads 4 and writes 2 B a parameter; a weight read by a product then moves 2 B × 3
  // (its float16 slice and the product's read) instead of 4 B × 3.
  assert.ok(b.weightBytes > a.weightBytes - 6 * params.parameterCount, `${b.weightBytes} vs ${a.weightBytes}`);
  assert.ok(b.weightBytes < a.weightBytes + 6 * n, `${b.weightBytes} vs ${a.weightBytes} + ${6 * n}`);
});
