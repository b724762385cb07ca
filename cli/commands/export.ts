import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { type Engine, openEngine } from '../../trainer/engine';
import { type ExportResult, exportModel } from '../../trainer/model';
import { applyCheckpoint, loadCheckpoint } from '../../trainer/zo/checkpoint';
import { addModelOptions, engineOptions, existingPath, type ModelCliOptions, reportModel } from '../options';
import { emitJson, note } from '../output';
import { CliError } from '../errors';

interface ExportOptions extends ModelCliOptions {
  checkpoint: string;
  out: string;
  requantize?: boolean;
  force?: boolean;
  json?: boolean;
}

export function registerExport(program: Command): void {
  const cmd = program
    .command('export')
    .description('Write base model + checkpoint coefficients as a standalone ONNX model (same inputs and outputs as the base)');
  addModelOptions(cmd)
    .requiredOption('--checkpoint <file>', 'coefficients from `fedkseed train` or a federation', existingPath('--checkpoint'))
    .requiredOption('--out <file>', 'the .onnx file to write (its tokenizer and config files are copied beside it)')
    .option('--requantize', "write quantized weights in the model's own scheme (its scales and zero points), not as float32 (docs/models.md)")
    .option('--force', "replace a tokenizer or config file of another model already in --out's folder")
    .option('--json', 'print the result as JSON')
    .action((o: ExportOptions) => runExport(o));
}

/** The model's tokenizer and config files that go beside an export to `out`, and where. */
function companions(engine: Engine, out: string): { source: string; target: string }[] {
  const folder = dirname(resolve(out));
  const { tokenizer, tokenizerConfig, config } = engine.located;
  return [tokenizer, tokenizerConfig, config]
    .filter((source): source is string => Boolean(source) && dirname(resolve(source as string)) !== folder)
    .map((source) => ({ source, target: join(folder, basename(source)) }));
}

/**
 * Files in the export's folder with the name of one of the model's tokenizer or config files but other
 * content (another model's config.json, say): beside the new model they would describe it wrongly.
 */
export function foreignCompanions(engine: Engine, out: string): string[] {
  return companions(engine, out)
    .filter(({ source, target }) => existsSync(target) && !readFileSync(target).equals(readFileSync(source)))
    .map(({ target }) => target);
}

/** Refuses (before any work) an export that would sit beside another model's files, unless forced. */
export function checkExportFolder(engine: Engine, out: string, force: boolean | undefined, flag = '--out'): void {
  const foreign = foreignCompanions(engine, out);
  if (foreign.length === 0 || force) return;
  const names = foreign.map((f) => basename(f)).join(', ');
  throw new CliError(
    `${flag} ${out}: its folder ${dirname(resolve(out))} already holds ${names} of another model, which would describe the export wrongly; write into an empty folder (${flag} <new folder>/${basename(out)}) or pass --force to replace ${foreign.length === 1 ? 'it' : 'them'} with the model's own`,
  );
}

/**
 * Writes the engine's current weights as an ONNX model, with the tokenizer and config files of the
 * model's layout beside it. Files of the same name with other content are replaced (callers refuse that
 * first without --force: checkExportFolder) and listed in `replaced`.
 */
export function exportWithTokenizer(
  engine: Engine,
  out: string,
  options: { requantize?: boolean } = {},
): { result: ExportResult; copied: string[]; replaced: string[] } {
  const pairs = companions(engine, out);
  const foreign = new Set(foreignCompanions(engine, out));
  const result = exportModel(engine.model, engine.params.weights, out, { quantized: options.requantize ? 'requantize' : 'float32' });
  // A model without its tokenizer is not usable: copy the tokenizer files when writing elsewhere.
  const copied: string[] = [];
  const replaced: string[] = [];
  for (const { source, target } of pairs) {
    if (existsSync(target) && !foreign.has(target)) continue;
    copyFileSync(source, target);
    (foreign.has(target) ? replaced : copied).push(basename(source));
  }
  return { result, copied, replaced };
}

async function runExport(o: ExportOptions): Promise<void> {
  const engine = await openEngine(engineOptions(o));
  try {
    applyCheckpoint(engine.params, loadCheckpoint(o.checkpoint), engine.model.identity, o.checkpoint);
    reportModel(engine, o.json);
    checkExportFolder(engine, o.out, o.force);
    const { result, copied, replaced } = exportWithTokenizer(engine, o.out, { requantize: o.requantize });
    if (o.json) emitJson({ out: result.path, externalData: result.externalDataPath, weightBytes: result.weightBytes, copied, replaced });
    else {
      if (replaced.length > 0) note(`replaced ${replaced.join(', ')} beside ${o.out} with the model's own (--force)`);
      process.stdout.write(
        `wrote ${result.path}${result.externalDataPath ? ` and ${result.externalDataPath}` : ''} (${(result.weightBytes / 2 ** 20).toFixed(1)} MiB of weights)\n`,
      );
    }
  } finally {
    await engine.close();
  }
}
