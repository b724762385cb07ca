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
import { chooseWebGpuAdapter, isSoftwareName, parseVulkanSummary, surveyVulkanDrivers, type WebGpuSurvey } from '../../trainer/device/adapters';
import { ModelError } from '../../trainer/model/errors';
import { loadModel } from '../../trainer/model/load';
import { ModelSession } from '../../trainer/device/session';
import { singleNodeGraph } from '../../trainer/model/onnx';

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
  return singleNodeGraph('add', 'Add', ['x', 'x'], 2);
}

const createTiny = (bytes: Uint8Array) => (ep: string) =>
  ort.InferenceSession.create(bytes, { executionProviders: [ep], logSeverityLevel: 3, intraOpNumThreads: 1 });

test('requests: auto expands in order, lists and arrays keep order without duplicates, unknown names are refused', () => {
  assert.deepEqual(parseProviderRequest('auto').names, [...AUTO_ORDER]);
  assert.deepEqual(parseProviderRequest(' WebGPU , cpu ').names, ['webgpu', 'cpu']);
  assert.deepEqual(parseProviderRequest(['cuda,webgpu', 'cpu', 'cuda']).names, ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(parseProviderRequest(['coreml', 'auto']).names, ['coreml', ...AUTO_ORDER]);
  assert.equal(parseProviderRequest(['cuda', 'cpu']).text, 'cuda,cpu');
  assert.throws(
    () => parseProviderRequest('cuda,metal'),
    (e: Error) => e instanceof ProviderRequestError && /unknown execution provider 'metal'/.test(e.message),
  );
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
  assert.deepEqual(
    plan.ruledOut.map((a) => a.name),
    ['cuda', 'dml'],
  );
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
    assert.deepEqual(
      report.attempts.map((a) => a.name),
      [...AUTO_ORDER],
    );
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
    await assert.rejects(
      ModelSession.create(model, { executionProviders: 'cuda' }),
      (e: Error) => e instanceof ModelError && /CUDA binaries not installed/.test(e.message),
    );
  }
});

// A software WebGPU adapter (Mesa's lavapipe/llvmpipe, SwiftShader) is a CPU rasteriser: training on it runs
// several times slower than the CPU provider, so 'auto' must never take it. Naming 'webgpu' still uses it.
const software: WebGpuSurvey = {
  source: 'vulkaninfo',
  adapters: [{ name: 'llvmpipe (LLVM 15.0.6, 256 bits)', kind: 'cpu', driver: 'llvmpipe', software: true }],
};
const nvidiaAndSoftware: WebGpuSurvey = {
  source: 'vulkaninfo',
  adapters: [
    { name: 'llvmpipe (LLVM 15.0.6, 256 bits)', kind: 'cpu', driver: 'llvmpipe', software: true },
    { name: 'NVIDIA H200', kind: 'discrete', driver: 'NVIDIA', software: false },
  ],
};
const withSurvey = (survey: WebGpuSurvey): ProviderEnvironment => ({ ...linux(false), webgpuAdapters: () => survey });

test('auto passes over a software WebGPU adapter and says which adapter and why; a named webgpu request still uses it', () => {
  const auto = planProviders('auto', withSurvey(software));
  assert.deepEqual(auto.candidates, ['cpu']);
  const webgpu = auto.ruledOut.find((a) => a.name === 'webgpu');
  assert.match(webgpu?.reason ?? '', /software adapter/);
  assert.match(webgpu?.reason ?? '', /llvmpipe \(LLVM 15\.0\.6, 256 bits\)/);
  const named = planProviders('webgpu', withSurvey(software));
  assert.deepEqual(named.candidates, ['webgpu']);
  // Named in a list together with auto: the name wins.
  assert.deepEqual(planProviders(['webgpu', 'auto'], withSurvey(software)).candidates, ['webgpu', 'cpu']);
});

test('auto takes a hardware GPU adapter and names the software one it passed over', () => {
  const plan = planProviders('auto', withSurvey(nvidiaAndSoftware));
  assert.deepEqual(plan.candidates, ['webgpu', 'cpu']);
  const adapter = chooseWebGpuAdapter(nvidiaAndSoftware);
  assert.equal(adapter.chosen?.name, 'NVIDIA H200');
  assert.deepEqual(
    adapter.passedOver.map((p) => p.adapter.name),
    ['llvmpipe (LLVM 15.0.6, 256 bits)'],
  );
  assert.match(adapter.passedOver[0].reason, /software/);
  // No adapter at all: auto rules WebGPU out before creating a session.
  const none = planProviders('auto', withSurvey({ source: 'vulkaninfo', adapters: [] }));
  assert.match(none.ruledOut.find((a) => a.name === 'webgpu')?.reason ?? '', /no WebGPU adapter/);
});

test('this machine: auto never ends on a software WebGPU adapter', async () => {
  const env = currentProviderEnvironment();
  const { value: session, report } = await createWithProviders('auto', createTiny(tinyGraph()), env);
  try {
    const survey = env.webgpuAdapters?.();
    const chosen = survey ? chooseWebGpuAdapter(survey).chosen : null;
    if (report.used === 'webgpu') {
      assert.ok(chosen && !chosen.software, `auto took WebGPU on ${chosen ? `${chosen.name} (software)` : 'an adapter it could not name'}`);
      assert.equal(report.adapter?.name, chosen.name);
    }
    if (chosen?.software) {
      assert.notEqual(report.used, 'webgpu');
      assert.match(report.attempts.find((a) => a.name === 'webgpu')?.reason ?? '', /software adapter/);
    }
  } finally {
    await session.release();
  }
});

test('adapter survey: vulkaninfo --summary devices, and Vulkan driver manifests matched against the GPUs present', () => {
  const summary = [
    'Devices:',
    '========',
    'GPU0:',
    '\tdeviceType         = PHYSICAL_DEVICE_TYPE_CPU',
    '\tdeviceName         = llvmpipe (LLVM 15.0.6, 256 bits)',
    '\tdriverName         = llvmpipe',
    'GPU1:',
    '\tdeviceType         = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU',
    '\tdeviceName         = NVIDIA H200',
    '\tdriverName         = NVIDIA',
  ].join('\n');
  const devices = parseVulkanSummary(summary);
  assert.deepEqual(
    devices.map((d) => [d.name, d.kind, d.software]),
    [
      ['llvmpipe (LLVM 15.0.6, 256 bits)', 'cpu', true],
      ['NVIDIA H200', 'discrete', false],
    ],
  );
  const icds = [
    { manifest: '/usr/share/vulkan/icd.d/lvp_icd.json', library: 'libvulkan_lvp.so' },
    { manifest: '/usr/share/vulkan/icd.d/radeon_icd.json', library: 'libvulkan_radeon.so' },
    { manifest: '/usr/share/vulkan/icd.d/nvidia_icd.json', library: 'libGLX_nvidia.so.0' },
  ];
  // Mesa installs the radeon manifest everywhere: without an AMD GPU it is no adapter.
  assert.deepEqual(
    surveyVulkanDrivers(icds, [], true).adapters.map((a) => a.name),
    ['llvmpipe (Mesa lavapipe)'],
  );
  const withGpu = surveyVulkanDrivers(icds, ['0x10de'], true);
  assert.equal(chooseWebGpuAdapter(withGpu).chosen?.driver, 'libGLX_nvidia.so.0');
  assert.match(surveyVulkanDrivers(icds, ['0x10de'], false).note ?? '', /libvulkan\.so\.1/);
  assert.ok(isSoftwareName('Microsoft Basic Render Driver') && isSoftwareName('SwiftShader Device (Subzero)') && !isSoftwareName('AMD Radeon RX 7900'));
});
