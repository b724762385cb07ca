// The predicted step on a named GPU follows from the counts and the GPU's public peak figures: memory-bound
// parts scale with bytes over bandwidth, compute-bound ones with operations over the FP32 rate (FP16 for
// float16 forwards), launches add a fixed cost each; and the named GPUs are ordered as their datasheets are.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LAUNCH_US, forwardCounts, gpuByName, GPUS, predictPart, predictStep } from '../../trainer/device/gpu-model';

test('the table names the five GPUs with their datasheet figures', () => {
  assert.deepEqual(
    GPUS.map((g) => g.name),
    ['H100 SXM', 'A100', 'RTX 4090', 'RTX 4070 Laptop', 'Apple M2'],
  );
  assert.equal(gpuByName('h100 sxm').bandwidthGBs, 3350);
  assert.equal(gpuByName('Apple M2').bandwidthGBs, 100);
  for (const g of GPUS) assert.ok(g.source.length > 20 && g.bandwidthGBs > 0 && g.fp32Tflops > 0, g.name);
  assert.throws(() => gpuByName('Voodoo 2'), /unknown GPU/);
});

test('a part takes the longer of bytes/bandwidth and operations/FP32 rate, plus its launches', () => {
  const h100 = gpuByName('H100 SXM');
  // 3.35 GB at 3.35 TB/s: 1 ms; 67 G operations at 67 TFLOPS: 1 ms; 200 launches at 5 µs: 1 ms.
  const memory = predictPart({ dispatches: 0, bytes: 3.35e9, operations: 1e9 }, h100);
  assert.ok(Math.abs(memory.ms - 1) < 1e-9 && memory.bound === 'memory');
  const compute = predictPart({ dispatches: 0, bytes: 1e9, operations: 134e9 }, h100);
  assert.ok(Math.abs(compute.ms - 2) < 1e-9 && compute.bound === 'compute');
  const launches = predictPart({ dispatches: 400, bytes: 0, operations: 0 }, h100);
  assert.equal(launches.bound, 'launches');
  assert.ok(Math.abs(launches.ms - (400 * DEFAULT_LAUNCH_US) / 1000) < 1e-9);
  assert.ok(Math.abs(predictPart({ dispatches: 400, bytes: 0, operations: 0 }, h100, { launchUs: 1 }).ms - 0.4) < 1e-9);
  assert.throws(() => predictPart({ dispatches: -1, bytes: 0, operations: 0 }, h100), RangeError);
});

test('a step is its perturbation and its forwards; halving the bytes of a memory-bound perturbation halves its time', () => {
  const forwards = forwardCounts({ dispatches: 300, weightBytes: 12 * 124e6 }, 124e6, 128);
  assert.equal(forwards.operations, 2 * 2 * 124e6 * 128);
  assert.equal(forwards.bytes, 2 * 12 * 124e6);
  for (const gpu of GPUS) {
    const full = predictStep({ perturbation: { dispatches: 0, bytes: 1330 * 124e6, operations: 138 * 124e6 }, forwards }, gpu);
    const half = predictStep({ perturbation: { dispatches: 0, bytes: 665 * 124e6, operations: 69 * 124e6 }, forwards }, gpu);
    assert.equal(full.perturbation.bound, 'memory', gpu.name);
    assert.ok(Math.abs(half.perturbation.ms * 2 - full.perturbation.ms) < 1e-9, gpu.name);
    assert.ok(Math.abs(full.stepMs - full.perturbation.ms - full.forwards.ms) < 1e-12);
  }
  // Slower memory, longer step.
  const at = (name: string) => predictStep({ perturbation: { dispatches: 100, bytes: 5e10, operations: 0 }, forwards }, gpuByName(name)).stepMs;
  assert.ok(at('H100 SXM') < at('A100') && at('A100') < at('RTX 4090') && at('RTX 4090') < at('RTX 4070 Laptop') && at('RTX 4070 Laptop') < at('Apple M2'));
});

test("float16 forwards' products run at each GPU's FP16 shader rate (2× FP32 on an H100, 4× on an A100, 1× on Ada and Apple GPUs); the rest at FP32", () => {
  const counts = forwardCounts({ dispatches: 0, weightBytes: 1e6 }, 124e6, 8 * 128);
  const half = forwardCounts({ dispatches: 0, weightBytes: 1e6, float16Parameters: 124e6 }, 124e6, 8 * 128);
  const mixed = forwardCounts({ dispatches: 0, weightBytes: 1e6, float16Parameters: 85e6 }, 124e6, 8 * 128);
  assert.equal(counts.float16Operations, 0);
  assert.equal(half.operations, 0);
  assert.equal(half.float16Operations, counts.operations);
  assert.equal(mixed.operations + (mixed.float16Operations ?? 0), counts.operations);
  const ratio = (c: typeof half, name: string) => predictPart(c, gpuByName(name)).computeMs / predictPart(counts, gpuByName(name)).computeMs;
  assert.ok(Math.abs(ratio(half, 'H100 SXM') - 0.5) < 1e-9);
  assert.ok(Math.abs(ratio(half, 'A100') - 0.25) < 1e-9);
  assert.ok(Math.abs(ratio(mixed, 'A100') - (39 + 85 / 4) / 124) < 1e-9);
  for (const name of ['RTX 4090', 'RTX 4070 Laptop', 'Apple M2']) assert.ok(Math.abs(ratio(half, name) - 1) < 1e-12, name);
  for (const g of GPUS) assert.ok(g.fp16Tflops >= g.fp32Tflops && g.source.includes('FP16'), g.name);
});
