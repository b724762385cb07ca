import { copyFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type Engine, openEngine } from '../../trainer/engine';
import { type ExportResult, exportModel } from '../../trainer/model';
import { resolveModelPaths } from '../../trainer/paths';
import { applyCheckpoint, loadCheckpoint } from '../../trainer/zo/checkpoint';
import { addModelOptions, engineOptions, existingPath, type ModelCliOptions } from '../options';
import { emitJson } from '../output';

interface ExportOptions extends ModelCliOptions {
  checkpoint: string;
  out: string;
  json?: boolean;
}

export function registerExport(program: Command): void {
  const cmd = program.command('export').description('Write base model + checkpoint coefficients as a standalone ONNX model (same inputs and outputs as the base)');
  addModelOptions(cmd)
    .requiredOption('--checkpoint <file>', 'coefficients from `fedkseed train` or a federation', existingPath('--checkpoint'))
    .requiredOption('--out <file>', 'the .onnx file to write (its tokenizer files are copied beside it)')
    .option('--json', 'print the result as JSON')
    .action((o: ExportOptions) => runExport(o));
}

/** Writes the engine's current weights as an ONNX model, with the tokenizer files beside it. */
export function exportWithTokenizer(engine: Engine, out: string, tokenizerPath: string): { result: ExportResult; copied: string[] } {
  const result = exportModel(engine.model, engine.params.weights, out);
  // A model without its tokenizer is not usable: copy the tokenizer files when writing elsewhere.
  const source = dirname(tokenizerPath);
  const target = dirname(resolve(out));
  const copied: string[] = [];
  if (source !== target) {
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (existsSync(join(source, f)) && !existsSync(join(target, f))) {
        copyFileSync(join(source, f), join(target, f));
        copied.push(f);
      }
    }
  }
  return { result, copied };
}

async function runExport(o: ExportOptions): Promise<void> {
  const engine = await openEngine(engineOptions(o));
  try {
    applyCheckpoint(engine.params, loadCheckpoint(o.checkpoint), engine.model.identity, o.checkpoint);
    const { result, copied } = exportWithTokenizer(engine, o.out, resolveModelPaths(o.model, o.tokenizer).tokenizer);
    if (o.json) emitJson({ out: result.path, externalData: result.externalDataPath, weightBytes: result.weightBytes, copied });
    else process.stdout.write(`wrote ${result.path}${result.externalDataPath ? ` and ${result.externalDataPath}` : ''} (${(result.weightBytes / 2 ** 20).toFixed(1)} MiB of weights)\n`);
  } finally {
    await engine.close();
  }
}
