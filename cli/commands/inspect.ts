import type { Command } from 'commander';
import { bundledModelDir } from '../../trainer/paths';
import { loadModel, type LoadedModel } from '../../trainer/model/load';
import { describeLocated, locateModel } from '../../contracts/node/model-location';
import { DataType, dataTypeName } from '../../trainer/model/onnx';
import { addModelSelectionOptions, type ModelCliOptions } from '../options';
import { emitJson } from '../output';
import { formatTable } from './bench';
import { shapeMultipliers, sumSquares } from '../../trainer/zo/shape';
import { TRAINING_DEFAULTS } from '../../contracts/defaults';

interface InspectOptions extends Pick<ModelCliOptions, 'model' | 'variant' | 'tokenizer' | 'trainable' | 'freeze'> {
  constants?: boolean;
  json?: boolean;
}

export function registerInspect(program: Command): void {
  const cmd = program
    .command('inspect')
    .description(
      'What a model is to the engine: the file its layout resolves to, its interface, and its trainable parameters (name, shape, count, why) with the total',
    );
  addModelSelectionOptions(cmd)
    .option('--constants', 'also list the tensors that are not trained, and why')
    .option('--json', 'print one JSON object instead of text')
    .action((o: InspectOptions) => runInspect(o));
}

const FLOAT_NAMES: Record<number, string> = {
  [DataType.FLOAT]: 'float32',
  [DataType.FLOAT16]: 'float16',
  [DataType.BFLOAT16]: 'bfloat16',
  [DataType.DOUBLE]: 'float64',
};

const count = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);
const shape = (dims: readonly number[]): string => `[${dims.join(', ')}]`;

function describeInterface(model: LoadedModel): string {
  const { io } = model;
  const inputs = [io.inputIds, io.attentionMask, ...(io.positionIds ? [io.positionIds] : [])].map((i) => `${i.name} ${i.type}`).join(', ');
  const cache = io.cache
    ? `; KV cache: ${io.cache.past.length} past inputs${io.cache.useCacheBranch ? ` (merged: ${io.cache.useCacheBranch})` : ''}, trained without it (empty past), generation with it`
    : '; no KV cache';
  return `${inputs} → ${io.logits} ${FLOAT_NAMES[io.logitsType] ?? dataTypeName(io.logitsType)} (vocabulary ${model.vocabSize ?? 'unknown'})${cache}`;
}

async function runInspect(o: InspectOptions): Promise<void> {
  const located = locateModel(o.model ?? bundledModelDir(), { tokenizer: o.tokenizer, variant: o.variant });
  const select = o.trainable || o.freeze ? { trainable: o.trainable, freeze: o.freeze } : undefined;
  const model = await loadModel(located.model, { select });
  const total = model.weights.reduce((n, w) => n + count(w.dims), 0);
  // Each tensor's z multiplier under the default shape, derived as the engine derives it (tensors in name order).
  const byName = [...model.weights].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const multipliers = shapeMultipliers(
    TRAINING_DEFAULTS.shape,
    byName.map((w) => ({ size: count(w.dims), sumSquares: sumSquares(w.data) })),
  );
  const multiplierOf = new Map(byName.map((w, i) => [w.name, multipliers[i]]));
  if (o.json) {
    emitJson({
      model: located.model,
      layout: located.layout,
      variant: located.variant,
      variants: located.choices,
      tokenizer: located.tokenizer,
      config: located.config,
      identity: model.identity,
      vocabulary: model.vocabSize,
      cache: model.io.cache ? { past: model.io.cache.past.map((p) => p.name), useCacheBranch: model.io.cache.useCacheBranch } : null,
      shape: TRAINING_DEFAULTS.shape,
      parameters: model.weights.map((w) => ({
        name: w.name,
        dims: w.dims,
        count: count(w.dims),
        storage: w.storage,
        reason: w.reason ?? '',
        zMultiplier: multiplierOf.get(w.name),
        ...(w.transposedCopies ? { transposedCopies: w.transposedCopies } : {}),
      })),
      total,
      constants: model.constants,
    });
    return;
  }
  const lines = [
    describeLocated(located),
    `interface: ${describeInterface(model)}`,
    `identity ${model.identity}`,
    '',
    `trainable parameters (${model.weights.length} tensors):`,
    formatTable(
      ['name', 'shape', 'count', `z × (${TRAINING_DEFAULTS.shape})`, 'why'],
      model.weights.map((w) => [w.name, shape(w.dims), count(w.dims).toLocaleString('en-US'), String(multiplierOf.get(w.name)), w.reason ?? '']),
      'lrrrl',
    ),
    `total ${total.toLocaleString('en-US')} parameters`,
  ];
  if (model.constants.length > 0) {
    if (o.constants) {
      lines.push(
        '',
        `not trained (${model.constants.length} tensors):`,
        formatTable(
          ['name', 'shape', 'type', 'why'],
          model.constants.map((c) => [c.name, shape(c.dims), c.type, c.reason]),
          'lrll',
        ),
      );
    } else {
      lines.push(`not trained: ${model.constants.length} tensors (--constants lists them)`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
