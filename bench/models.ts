// The benchmarks' generated models, built once into the user's cache folder (benchCacheDir) and reused.
// Models past a protobuf message's 2 GiB keep their weights in an external-data file beside the .onnx
// (as exporters write them), written tensor by tensor.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { buildGpt2, GPT2_PRESETS, gpt2ParamCount, writeGpt2, type Gpt2Config } from '../trainer/model';
import { encodeModel, onnx } from '../trainer/model/onnx';

/**
 * Shapes the benchmarks build beyond the builder's presets: a ~1.3B decoder with GPT-3 XL's shape
 * (d_model 2048, 24 layers, 16 heads, GPT-2's vocabulary, tied embeddings), stored with external data.
 */
export const LARGE_PRESETS = {
  'gpt-1.3b': { vocab: 50257, ctx: 2048, dModel: 2048, layers: 24, heads: 16, mlpRatio: 4, tiedEmbeddings: true, dtype: 'float32', seed: 1 },
} as const satisfies Record<string, Gpt2Config>;

export type BenchPreset = keyof typeof GPT2_PRESETS | keyof typeof LARGE_PRESETS;

export function presetConfig(preset: BenchPreset): Gpt2Config {
  return preset in LARGE_PRESETS ? LARGE_PRESETS[preset as keyof typeof LARGE_PRESETS] : GPT2_PRESETS[preset as keyof typeof GPT2_PRESETS];
}

export function presetParameters(preset: BenchPreset): number {
  return gpt2ParamCount(presetConfig(preset));
}

/**
 * The generated models (~40 MB for 10m, ~500 MB for 124m, ~5.3 GB for 1.3b) are kept between runs in
 * the user's cache, not in a temporary folder removed at the end: building the 124M model takes seconds
 * and half a gigabyte of writes that every run would repeat, and one copy serves every clone on the
 * machine. Outside the working tree, so a bench never leaves files in the repository.
 * FEDKSEED_BENCH_CACHE (or --cache-dir) overrides; delete the folder to reclaim the space.
 */
export function benchCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FEDKSEED_BENCH_CACHE) return resolve(env.FEDKSEED_BENCH_CACHE);
  return resolve(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'fedkseed', 'bench');
}

/** Weights above this many bytes are written as external data. */
const EXTERNAL_FROM_BYTES = 1.5e9;
const ALIGNMENT = 4096;

/** Where cachedModel keeps `preset` (with `extra` options); the name carries a hash of the configuration. */
export function cachedModelPath(preset: BenchPreset, cacheDir: string, extra: Partial<Gpt2Config> = {}): string {
  const config: Gpt2Config = { ...presetConfig(preset), ...extra };
  const tag = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 10);
  return join(cacheDir, `${preset}-${tag}.onnx`);
}

/**
 * Builds the preset (with `extra` options, e.g. a KV cache) once, and returns its path; a changed preset
 * gets a new file name. Large ones get `<name>.onnx.data` beside them.
 */
export function cachedModel(preset: BenchPreset, cacheDir: string, extra: Partial<Gpt2Config> = {}): string {
  const config: Gpt2Config = { ...presetConfig(preset), ...extra };
  const file = cachedModelPath(preset, cacheDir, extra);
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    const partial = `${file}.${process.pid}.partial`;
    if (gpt2ParamCount(config) * 4 > EXTERNAL_FROM_BYTES) writeExternalGpt2(config, partial, file);
    else writeGpt2(config, partial);
    renameSync(partial, file); // never leave a half-written model where a later run would trust it
  }
  return file;
}

/**
 * The builder's model with every initializer's bytes moved to `<final>.data` (4 KiB aligned), each
 * released once written; the data file is renamed into place before the model that names it.
 */
function writeExternalGpt2(config: Gpt2Config, partial: string, final: string): void {
  const proto = buildGpt2(config);
  const dataName = `${basename(final)}.data`;
  const dataPartial = `${partial}.data`;
  const fd = openSync(dataPartial, 'w');
  try {
    let offset = 0;
    for (const t of proto.graph.initializer) {
      const bytes = t.rawData;
      if (bytes.length < ALIGNMENT) continue; // small tensors (shapes, axes) stay inline
      const padding = (ALIGNMENT - (offset % ALIGNMENT)) % ALIGNMENT;
      if (padding) writeAll(fd, new Uint8Array(padding));
      offset += padding;
      writeAll(fd, bytes);
      t.rawData = new Uint8Array(0);
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: 'location', value: dataName },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(bytes.length) },
      ];
      offset += bytes.length;
    }
  } catch (e) {
    closeSync(fd);
    rmSync(dataPartial, { force: true });
    throw e;
  }
  closeSync(fd);
  const model = encodeModel(proto);
  const out = openSync(partial, 'w');
  try {
    writeAll(out, model);
  } finally {
    closeSync(out);
  }
  renameSync(dataPartial, `${final}.data`);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}
