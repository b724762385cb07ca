// Non-IID client shards for a simulated federation, and the files that hand them to client processes.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Example } from '../trainer/data/examples';
import { splitByGroup, splitDirichlet } from '../trainer/data/splits';

export type SplitMode = 'auto' | 'group' | 'dirichlet';

export interface ShardOptions {
  readonly clients: number;
  readonly mode: SplitMode;
  /** Dirichlet concentration (0.5: strong label skew, 5.0: mild; the paper's Dolly settings). */
  readonly alpha: number;
  /** Group split: groups per client (default: as many as divide evenly). */
  readonly groupsPerClient?: number;
  /** Dirichlet: fewest examples a client may get. */
  readonly minPerClient: number;
  /** Labelled (category) data: auto picks Dirichlet. */
  readonly labelled: boolean;
  readonly seed: number;
}

export interface ShardPlan {
  readonly mode: 'group' | 'dirichlet';
  readonly shards: Example[][];
  /** Groups no client got (only an explicit groupsPerClient leaves any out), and their examples. */
  readonly unassigned: { readonly groups: readonly string[]; readonly examples: number };
  /** What the user should know about the split: why auto chose it, what was left out. */
  readonly note?: string;
}

export function planShards(train: readonly Example[], o: ShardOptions): ShardPlan {
  const groups = new Set(train.map((e) => e.group)).size;
  let mode: 'group' | 'dirichlet';
  let note: string | undefined;
  if (o.mode === 'auto') {
    mode = o.labelled ? 'dirichlet' : groups >= o.clients ? 'group' : 'dirichlet';
    if (!o.labelled && mode === 'dirichlet')
      note = `${groups} group(s) for ${o.clients} clients: splitting by Dirichlet(α = ${o.alpha}) over groups instead of whole groups per client`;
  } else mode = o.mode;
  if (mode === 'group') {
    if (groups < o.clients)
      throw new Error(
        `the data has ${groups} group(s) (top-level folders or categories); ${o.clients} clients need at least ${o.clients} (use fewer clients or --split dirichlet)`,
      );
    const shards = splitByGroup(train, { clients: o.clients, groupsPerClient: o.groupsPerClient, seed: o.seed });
    const unassigned = leftOut(train, shards);
    if (unassigned.groups.length > 0) {
      note = `--groups-per-client ${o.groupsPerClient} × ${o.clients} clients: ${unassigned.groups.length} of ${groups} groups go to no client (${unassigned.groups.join(', ')}: ${unassigned.examples} training windows)`;
    }
    return { mode, shards, unassigned, note };
  }
  if (train.length < o.clients * o.minPerClient) throw new Error(`${train.length} training examples cannot give ${o.clients} clients ${o.minPerClient} each`);
  const shards = splitDirichlet(train, { clients: o.clients, alpha: o.alpha, seed: o.seed, minPerClient: o.minPerClient });
  return { mode, shards, unassigned: leftOut(train, shards), note };
}

function leftOut(train: readonly Example[], shards: readonly Example[][]): ShardPlan['unassigned'] {
  const dealt = new Set(shards.flat());
  const rest = train.filter((e) => !dealt.has(e));
  return { groups: groupsOf(rest), examples: rest.length };
}

/**
 * Writes a shard as pre-tokenised JSONL, one window per line. A client reading it with the same seqLen
 * gets exactly these examples back (a line of at most seqLen tokens is one window).
 */
export async function writeShard(path: string, shard: readonly Example[]): Promise<void> {
  const out = createWriteStream(path);
  for (const e of shard) {
    const line: Record<string, unknown> = { id: e.id, group: e.group, input_ids: Array.from(e.ids) };
    if (e.lossMask) line.loss_mask = Array.from(e.lossMask);
    if (!out.write(`${JSON.stringify(line)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export function groupsOf(shard: readonly Example[]): string[] {
  return [...new Set(shard.map((e) => e.group))].sort();
}

/** Source files a code model learns from; prose, data and markup are left out by default. */
export const CODE_GLOBS: readonly string[] = [
  '**/*.{ts,tsx,mts,cts,js,jsx,mjs,cjs,py,java,kt,scala,go,rs,c,h,cc,cpp,cxx,hpp,cs,swift,rb,php,lua,sh,bash,r,jl,sql,dart,zig,hs,ml,ex,exs,clj,vue,svelte}',
];
