// Preparing a simulation's data: read the dataset with the evaluator's tokenizer, hold out the global
// evaluation set, deal the rest to the clients as non-IID shards and write each shard where its client
// process reads it.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { type Dataset, loadDataset } from '../trainer/data/dataset';
import type { Example } from '../trainer/data/examples';
import { type DataFormat, detectFormat } from '../trainer/data/readers';
import type { Engine } from '../trainer/engine';
import type { SimulationListener, SimulationOptions } from './options';
import { CODE_GLOBS, groupsOf, planShards, type ShardPlan, writeShard } from './shards';

export interface PreparedData {
  readonly format: DataFormat;
  readonly data: Dataset;
  /** The globs of the files read from a folder of text (undefined: every text file). */
  readonly include: readonly string[] | undefined;
  /** The held-out examples the global model is evaluated on (at most evalExamples). */
  readonly heldOut: readonly Example[];
  readonly plan: ShardPlan;
  /** Client ids, one per shard. */
  readonly ids: readonly string[];
}

export const shardFile = (shardDir: string, id: string): string => join(shardDir, `${id}.jsonl`);

/** Reads the data; a folder of text is read as code by default, and without code as every text file. */
async function readData(
  o: SimulationOptions,
  engine: Engine,
  onEvent: SimulationListener,
): Promise<{ format: DataFormat; data: Dataset; include: readonly string[] | undefined }> {
  const format = o.format ?? (await detectFormat(o.data));
  const load = (include: string[] | undefined) =>
    loadDataset(o.data, {
      tokenizer: engine.tokenizer,
      seqLen: o.seqLen,
      format: o.format,
      include,
      heldOutFraction: o.heldOut,
      onProblem: (problem) => onEvent({ type: 'data-problem', problem }),
    });
  const codeOnly = format === 'text' && o.include === undefined && statSync(o.data).isDirectory();
  let include: readonly string[] | undefined = codeOnly ? CODE_GLOBS : o.include;
  let data = await load(include ? [...include] : undefined);
  if (codeOnly && data.train.length === 0) {
    include = undefined;
    data = await load(undefined);
  }
  if (data.train.length === 0) throw new Error(`no training examples in ${o.data} (pass --data with code, text or instruction data)`);
  return { format, data, include };
}

export async function prepareData(o: SimulationOptions, engine: Engine, shardDir: string, onEvent: SimulationListener): Promise<PreparedData> {
  const { format, data, include } = await readData(o, engine, onEvent);
  const heldOut = data.heldOut.slice(0, o.evalExamples);
  if (heldOut.length === 0) throw new Error(`no held-out examples in ${o.data}: raise --held-out or add data`);
  const plan = planShards(data.train, {
    clients: o.clients,
    mode: o.split,
    alpha: o.alpha,
    groupsPerClient: o.groupsPerClient,
    minPerClient: o.batchSize,
    labelled: format === 'dolly' || format === 'alpaca',
    seed: o.federationSeed,
  });
  const ids = plan.shards.map((_, i) => `client-${i + 1}`);
  onEvent({
    type: 'prepared',
    parameters: engine.params.parameterCount,
    train: data.train.length,
    heldOut: data.heldOut.length,
    evalExamples: heldOut.length,
    split: plan.mode,
    note: plan.note,
    clients: plan.shards.map((s, i) => ({ id: ids[i], examples: s.length, groups: groupsOf(s) })),
    unassigned: plan.unassigned,
  });
  for (const [i, shard] of plan.shards.entries()) await writeShard(shardFile(shardDir, ids[i]), shard);
  return { format, data, include, heldOut, plan, ids };
}
