import { copyFileSync, existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type Engine, openEngine } from '../../trainer/engine';
import { type ExportResult, exportModel } from '../../trainer/model';
import { applyCheckpoint, loadCheckpoint } from '../../trainer/zo/checkpoint';
import { addModelOptions, engineOptions, existingPath, type ModelCliOptions, reportModel } from '../options';
import { emitJson } from '../output';

interface ExportOptions extends ModelCliOptions {
  checkpoint: string;
  out: string;
  requantize?: boolean;
  json?: boolean;
}

export function registerExport(program: Command): void {
  const cmd = program.command('export').description('Write base model + checkpoint coefficients as a standalone ONNX model (same inputs and outputs as the base)');
  addModelOptions(cmd)
    .requiredOption('--checkpoint <file>', 'coefficients from `fedkseed train` or a federation', existingPath('--checkpoint'))
    .requiredOption('--out <file>', 'the .onnx file to write (its tokenizer and config files are copied beside it)')
    .option('--requantize', "write quantized weights in the model's own scheme (its scales and zero points), not as float32 (docs/models.md)")
    .option('--json', 'print the result as JSON')
    .action((o: ExportOptions) => runExport(o));
}

/**
 * Writes the engine's current weights as an ONNX model, with the tokenizer and config files of the
 * model's layout beside it.
 */
export function exportWithTokenizer(engine: Engine, out: string, options: { requantize?: boolean } = {}): { result: ExportResult; copied: string[] } {
  const result = exportModel(engine.model, engine.params.weights, out, { quantized: options.requantize ? 'requantize' : 'float32' });
  // A model without its tokenizer is not usable: copy the tokenizer files when writing elsewhere.
  const target = dirname(resolve(out));
  const copied: string[] = [];
  const { tokenizer, tokenizerConfig, config } = engine.located;
  for (const source of [tokenizer, tokenizerConfig, config]) {
    if (!source || dirname(source) === target || existsSync(join(target, basename(source)))) continue;
    copyFileSync(source, join(target, basename(source)));
    copied.push(basename(source));
  }
  return { result, copied };
}

async function runExport(o: ExportOptions): Promise<void> {
  const engine = await openEngine(engineOptions(o));
  try {
    applyCheckpoint(engine.params, loadCheckpoint(o.checkpoint), engine.model.identity, o.checkpoint);
    reportModel(engine, o.json);
    const { result, copied } = exportWithTokenizer(engine, o.out, { requantize: o.requantize });
    if (o.json) emitJson({ out: result.path, externalData: result.externalDataPath, weightBytes: result.weightBytes, copied });
    else process.stdout.write(`wrote ${result.path}${result.externalDataPath ? ` and ${result.externalDataPath}` : ''} (${(result.weightBytes / 2 ** 20).toFixed(1)} MiB of weights)\n`);
  } finally {
    await engine.close();
  }
}
