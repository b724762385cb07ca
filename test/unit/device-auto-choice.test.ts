// What 'auto' chooses: the pure rule (providers available, predicted and opened adapter, optional
// measurement → choice and reason), the opened-adapter evidence, the measurement cache, and on this
// machine that a WebGPU device opened on lavapipe is seen as software.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { WebGpuAdapter } from '../../trainer/device/adapters';
import {
  decideAuto,
  observationFromThreads,
  observeOpenedAdapter,
  providerSpeedFor,
  readProviderSpeeds,
  recordProviderSpeed,
  userCacheDir,
  type AdapterObservation,
  type ProviderSpeed,
} from '../../trainer/device/auto-choice';
import { createWithProviders, describeReport, type ProviderEnvironment } from '../../trainer/device/providers';
import { singleNodeGraph } from '../../trainer/model/onnx';
import { webgpuSkipReason } from '../helpers/webgpu';

const h200: WebGpuAdapter = { name: 'NVIDIA H200', kind: 'discrete', driver: 'NVIDIA', software: false };
const lavapipe: WebGpuAdapter = { name: 'llvmpipe (LLVM 15.0.6, 256 bits)', kind: 'cpu', driver: 'llvmpipe', software: true };
const openedHardware: AdapterObservation = { readable: true, software: false, name: 'not lavapipe', evidence: 'no llvmpipe rasteriser thread' };
const openedLavapipe: AdapterObservation = { readable: true, software: true, name: 'llvmpipe (Mesa lavapipe)', evidence: '2 llvmpipe rasteriser threads' };
const speed = (cudaStepMs: number, webgpuStepMs: number, adapter = h200.name): ProviderSpeed => ({
  adapter,
  cudaStepMs,
  webgpuStepMs,
  steps: 5,
  workload: 'zo-1m batch 4 × 64',
  measuredAt: '2026-01-01T00:00:00Z',
});

test('rule: WebGPU (device-resident) before CUDA unless a measurement on this adapter says CUDA is faster', () => {
  const all = ['cuda', 'webgpu', 'cpu'] as const;
  const plain = decideAuto({ available: all, predicted: h200, opened: openedHardware });
  assert.equal(plain.choice, 'webgpu');
  assert.match(plain.reason, /device-resident.*no measurement/);
  const cudaFaster = decideAuto({ available: all, predicted: h200, opened: openedHardware, measurement: speed(20, 30) });
  assert.equal(cudaFaster.choice, 'cuda');
  assert.match(cudaFaster.reason, /measured on NVIDIA H200.*CUDA 20 ms per ZO step, WebGPU 30 ms/);
  const webgpuFaster = decideAuto({ available: all, predicted: h200, measurement: speed(30, 20) });
  assert.equal(webgpuFaster.choice, 'webgpu');
  assert.match(webgpuFaster.reason, /measured.*WebGPU 20 ms/);
  // A measurement taken on another adapter says nothing about this one.
  const elsewhere = decideAuto({ available: all, predicted: h200, measurement: speed(1, 30, 'AMD Radeon RX 7900') });
  assert.equal(elsewhere.choice, 'webgpu');
  assert.match(elsewhere.reason, /another adapter \(AMD Radeon RX 7900\)/);
  // Measurements that are not numbers of milliseconds are ignored.
  assert.equal(decideAuto({ available: all, predicted: h200, measurement: speed(0, 30) }).choice, 'webgpu');
  assert.equal(decideAuto({ available: all, predicted: h200, measurement: speed(Number.NaN, 30) }).choice, 'webgpu');
});

test('rule: a software adapter the session opened is refused, predicted or not; the next provider is chosen', () => {
  const surprise = decideAuto({ available: ['webgpu', 'cuda', 'cpu'], predicted: h200, opened: openedLavapipe });
  assert.equal(surprise.choice, 'cuda');
  assert.match(surprise.refusedWebGpu ?? '', /opened a software adapter, llvmpipe \(Mesa lavapipe\).*not the predicted NVIDIA H200/);
  const expected = decideAuto({ available: ['webgpu', 'cpu'], predicted: lavapipe, opened: openedLavapipe });
  assert.equal(expected.choice, 'cpu');
  assert.match(expected.refusedWebGpu ?? '', /software adapter/);
  assert.doesNotMatch(expected.refusedWebGpu ?? '', /not the predicted/);
  // Unreadable (not Linux): the prediction stands.
  const unreadable = decideAuto({ available: ['webgpu', 'cpu'], predicted: h200, opened: observationFromThreads(null, 'win32') });
  assert.equal(unreadable.choice, 'webgpu');
  assert.equal(unreadable.refusedWebGpu, undefined);
});

test('rule: without WebGPU, CUDA, then DirectML, then the CPU; nothing available is said', () => {
  assert.equal(decideAuto({ available: ['cpu', 'cuda'], predicted: null }).choice, 'cuda');
  assert.equal(decideAuto({ available: ['cpu', 'dml'], predicted: null }).choice, 'dml');
  const cpu = decideAuto({ available: ['cpu'], predicted: null });
  assert.deepEqual([cpu.choice, cpu.reason], ['cpu', 'no GPU provider available']);
  assert.equal(decideAuto({ available: [], predicted: null }).choice, null);
});

test('opened adapter: llvmpipe rasteriser threads mean lavapipe; none means another device; other platforms cannot tell', () => {
  const sw = observationFromThreads(['node', 'llvmpipe-0', 'llvmpipe-1'], 'linux');
  assert.ok(sw.readable && sw.software);
  const hw = observationFromThreads(['node', 'node', 'cuda-EvtHandlr'], 'linux');
  assert.ok(hw.readable && !hw.software);
  const mac = observationFromThreads(['main'], 'darwin');
  assert.ok(!mac.readable && /prediction is kept/.test(mac.note));
});

test('measurement cache: recorded per adapter in the user cache folder, replaced on re-measure, malformed entries dropped', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-speed-'));
  try {
    const file = join(dir, 'provider-speed.json');
    assert.deepEqual(readProviderSpeeds(file), []);
    recordProviderSpeed(speed(20, 30), file);
    recordProviderSpeed(speed(5, 6, 'Apple M2'), file);
    recordProviderSpeed(speed(40, 30), file);
    assert.deepEqual(providerSpeedFor(h200.name, file), speed(40, 30));
    assert.equal(readProviderSpeeds(file).length, 2);
    writeFileSync(file, JSON.stringify({ measurements: [{ adapter: 'x', cudaStepMs: '1' }, speed(1, 2)] }));
    assert.deepEqual(readProviderSpeeds(file), [speed(1, 2)]);
    writeFileSync(file, 'not json');
    assert.deepEqual(readProviderSpeeds(file), []);
    assert.equal(userCacheDir('linux', { XDG_CACHE_HOME: '/c' }), join('/c', 'fedkseed'));
    assert.equal(userCacheDir('win32', { LOCALAPPDATA: 'L' }), join('L', 'fedkseed'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function tinyGraph(): Uint8Array {
  return singleNodeGraph('add', 'Add', ['x', 'x'], 2);
}

test('auto on a machine whose survey predicts a GPU but whose WebGPU device opens lavapipe: WebGPU refused before use', async () => {
  const env: ProviderEnvironment = {
    platform: 'linux',
    arch: 'x64',
    backends: [
      { name: 'cpu', bundled: true },
      { name: 'webgpu', bundled: true },
    ],
    hasProviderLibrary: () => false,
    webgpuAdapters: () => ({ source: 'vulkaninfo', adapters: [h200, lavapipe] }),
    observeWebGpuAdapter: () => Promise.resolve(openedLavapipe),
  };
  const tried: string[] = [];
  const { value: session, report } = await createWithProviders(
    'auto',
    (ep) => {
      tried.push(ep);
      return ort.InferenceSession.create(tinyGraph(), { executionProviders: [ep], logSeverityLevel: 3, intraOpNumThreads: 1 });
    },
    env,
  );
  try {
    assert.deepEqual(tried, ['cpu']);
    assert.equal(report.used, 'cpu');
    const webgpu = report.attempts.find((a) => a.name === 'webgpu');
    assert.equal(webgpu?.outcome, 'unavailable');
    assert.match(webgpu?.reason ?? '', /not the predicted NVIDIA H200/);
    assert.equal(report.choiceReason, 'no GPU provider available');
    assert.match(describeReport(report), /^cpu \[no GPU provider available\]/);
  } finally {
    await session.release();
  }
});

test('this machine: the device onnxruntime opens for WebGPU on lavapipe is seen as software', async (t) => {
  const skip = await webgpuSkipReason();
  if (skip !== null || process.platform !== 'linux') {
    t.skip(skip ?? 'thread names are read on Linux only');
    return;
  }
  const observed = await observeOpenedAdapter();
  // This machine has no GPU: whatever Dawn opened is a CPU rasteriser (lavapipe).
  assert.ok(observed.readable && observed.software, JSON.stringify(observed));
});
