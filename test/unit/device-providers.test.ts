// Execution-provider selection: request parsing, availability on described machines, and real session
// creation on this machine (CPU only: 'auto' ends on cpu with a reason for every other provider).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import {
  AUTO_ORDER,
  CUDA_INSTALL_HINT,
  conciseOrtError,
  createWithProviders,
  currentProviderEnvironment,
  describeReport,
  NoProviderError,
  parseProviderRequest,
  planProviders,
  ProviderRequestError,
  unavailableReason,
  type ProviderEnvironment,
} from '../../trainer/device/providers';
import { ModelError } from '../../trainer/model/errors';
import { loadModel } from '../../trainer/model/load';
import { ModelSession } from '../../trainer/model/session';
import { createModel, DataType, encodeModel, node, valueInfo } from '../../trainer/model/onnx';

const linux = (cudaInstalled: boolean): ProviderEnvironment => ({
  platform: 'linux',
  arch: 'x64',
  backends: [
    { name: 'cpu', bundled: true },
    { name: 'webgpu', bundled: true },
    { name: 'cuda', bundled: false },
    { name: 'tensorrt', bundled: false },
  ],
  hasProviderLibrary: (file) => cudaInstalled && file === 'libonnxruntime_providers_cuda.so',
});

const windows: ProviderEnvironment = {
  platform: 'win32',
  arch: 'x64',
  backends: [
    { name: 'cpu', bundled: true },
    { name: 'dml', bundled: true },
    { name: 'webgpu', bundled: true },
  ],
  hasProviderLibrary: () => false,
};

/** A one-node graph (y = x + x) that every provider can run. */
function tinyGraph(): Uint8Array {
  const model = createModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 18 }],
    producerName: 'test',
    graph: {
      name: 'add',
      node: [node('Add', ['x', 'x'], ['y'], 'add')],
      initializer: [],
      input: [valueInfo('x', DataType.FLOAT, [2])],
      output: [valueInfo('y', DataType.FLOAT, [2])],
    },
  });
  return encodeModel(model);
}

const createTiny = (bytes: Uint8Array) => (ep: string) =>
  ort.InferenceSession.create(bytes, { executionProviders: [ep], logSeverityLevel: 3, intraOpNumThreads: 1 });

test('requests: auto expands in order, lists and arrays keep order without duplicates, unknown names are refused', () => {
  assert.deepEqual(parseProviderRequest('auto').names, [...AUTO_ORDER]);
  assert.deepEqual(parseProviderRequest(' WebGPU , cpu ').names, ['webgpu', 'cpu']);
  assert.deepEqual(parseProviderRequest(['cuda,webgpu', 'cpu', 'cuda']).names, ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(parseProviderRequest(['coreml', 'auto']).names, ['coreml', ...AUTO_ORDER]);
  assert.equal(parseProviderRequest(['cuda', 'cpu']).text, 'cuda,cpu');
  assert.throws(() => parseProviderRequest('cuda,metal'), (e: Error) => e instanceof ProviderRequestError && /unknown execution provider 'metal'/.test(e.message));
  assert.throws(() => parseProviderRequest(' , '), ProviderRequestError);
});

test('availability: CUDA needs its separately installed library; DirectML and CoreML are platform-bound', () => {
  const noCuda = unavailableReason('cuda', linux(false));
  assert.ok(noCuda?.startsWith('CUDA binaries not installed: run '), noCuda ?? '');
  assert.ok(noCuda?.includes(CUDA_INSTALL_HINT));
  assert.equal(unavailableReason('cuda', linux(true)), null);
  assert.match(unavailableReason('dml', linux(true)) ?? '', /not available on this platform \(linux\/x64\): DirectML runs on Windows only/);
  assert.match(unavailableReason('coreml', windows) ?? '', /CoreML runs on macOS only/);
  assert.equal(unavailableReason('dml', windows), null);
  assert.match(unavailableReason('cuda', windows) ?? '', /not available on this platform: onnxruntime-node for win32\/x64 supports cpu, dml, webgpu/);
  assert.equal(unavailableReason('cpu', windows), null);

  const plan = planProviders('auto', linux(false));
  assert.deepEqual(plan.candidates, ['webgpu', 'cpu']);
  assert.deepEqual(plan.ruledOut.map((a) => a.name), ['cuda', 'dml']);
});

test("onnxruntime's errors are cut to the sentence a user can act on", () => {
  const raw =
    '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';
  assert.equal(conciseOrtError(raw), 'Failed to get a WebGPU adapter: No supported adapters');
  assert.match(conciseOrtError('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'), /library or one it depends on is missing/);
});

test('this machine: auto ends on a working provider and gives a reason for every provider not used', async () => {
  const env = currentProviderEnvironment();
  const { value: session, report } = await createWithProviders('auto', createTiny(tinyGraph()), env);
  try {
    assert.deepEqual(report.attempts.map((a) => a.name), [...AUTO_ORDER]);
    for (const a of report.attempts) {
      if (a.name === report.used) assert.equal(a.outcome, 'used');
      else assert.ok(a.reason && a.reason.length > 0, `${a.name} has no reason`);
    }
    const byName = new Map(report.attempts.map((a) => [a.name, a]));
    if (process.platform !== 'win32') assert.match(byName.get('dml')?.reason ?? '', /Windows only/);
    if (!env.hasProviderLibrary('libonnxruntime_providers_cuda.so') && process.platform === 'linux') {
      assert.match(byName.get('cuda')?.reason ?? '', /CUDA binaries not installed: run ONNXRUNTIME_NODE_INSTALL=cuda12/);
    }
    // WebGPU is bundled on linux/x64; without a GPU adapter (this CI machine) session creation fails and says so.
    const webgpu = byName.get('webgpu');
    if (webgpu?.outcome === 'failed') {
      assert.match(webgpu.reason ?? '', /^session creation failed: Failed to get a WebGPU adapter/);
      assert.equal(report.used, 'cpu');
    }
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(1.5, -2), [2]) });
    assert.deepEqual(Array.from(out.y.data as Float32Array), [3, -4]);
    assert.ok(describeReport(report).startsWith(report.used));
  } finally {
    await session.release();
  }
});

test("this machine: 'cuda' alone fails with the install command when the CUDA binaries are absent", async (t) => {
  const env = currentProviderEnvironment();
  if (process.platform !== 'linux' || env.hasProviderLibrary('libonnxruntime_providers_cuda.so')) {
    t.skip('CUDA binaries are installed here');
    return;
  }
  let created = 0;
  await assert.rejects(
    createWithProviders(
      'cuda',
      (ep) => {
        created++;
        return createTiny(tinyGraph())(ep);
      },
      env,
    ),
    (e: Error) => e instanceof NoProviderError && e.message.includes(`cuda: CUDA binaries not installed: run ${CUDA_INSTALL_HINT}`),
  );
  assert.equal(created, 0, 'no session is attempted with a provider ruled out beforehand');
});

test('ModelSession takes a provider request and reports what is in use', async () => {
  const model = await loadModel('models/tiny-code-lm/model.onnx');
  const session = await ModelSession.create(model, { intraOpNumThreads: 1, executionProviders: ['webgpu', 'cpu'] });
  try {
    assert.ok(['webgpu', 'cpu'].includes(session.executionProvider));
    assert.equal(session.providerReport.used, session.executionProvider);
    assert.equal(session.providerReport.requested, 'webgpu,cpu');
    assert.equal(session.providerReport.attempts[0].name, 'webgpu');
  } finally {
    await session.release();
  }
  const env = currentProviderEnvironment();
  if (process.platform === 'linux' && !env.hasProviderLibrary('libonnxruntime_providers_cuda.so')) {
    await assert.rejects(ModelSession.create(model, { executionProviders: 'cuda' }), (e: Error) => e instanceof ModelError && /CUDA binaries not installed/.test(e.message));
  }
});
