// The table of defaults in docs/defaults.md, made from contracts/defaults.ts so the page cannot drift from
// what the commands and the extension use. `node --import tsx scripts/docs/defaults-table.ts --write`
// rewrites the table in place; test/unit/defaults.test.ts checks that the page holds today's table.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CLIENT_DEFAULTS,
  ENGINE_DEFAULTS,
  FEDERATION_DEFAULTS,
  LOCAL_FEDERATION_DEFAULTS,
  SIMULATION_DEFAULTS,
  TRAINING_DEFAULTS,
} from '../../contracts/defaults';
import { type Bound, describeBound, HYPERPARAMETER_BOUNDS } from '../../protocol/config-limits';

type Cell = string | number;
interface Row {
  readonly quantity: string;
  /** `fedkseed train` and `fedkseed eval` (they share the data options). */
  readonly train: Cell;
  readonly server: Cell;
  readonly simulate: Cell;
  /** The extension: its setting's default (local training, or its local federation). */
  readonly extension: Cell;
  readonly why: string;
}

const dash = '—';
const sci = (x: number): string => x.toExponential().replace('e+', 'e');

const ROWS: readonly Row[] = [
  {
    quantity: 'examples per step (batch)',
    train: TRAINING_DEFAULTS.batchSize,
    server: dash,
    simulate: TRAINING_DEFAULTS.batchSize,
    extension: TRAINING_DEFAULTS.batchSize,
    why: 'FedKSeed uses small batches',
  },
  {
    quantity: 'tokens per window (`--seq-len`)',
    train: TRAINING_DEFAULTS.seqLen,
    server: dash,
    simulate: SIMULATION_DEFAULTS.seqLen,
    extension: TRAINING_DEFAULTS.seqLen,
    why: 'simulate runs many client processes on one machine and ends in minutes; its checkpoint records its windows, so `eval --checkpoint` scores them',
  },
  {
    quantity: 'files read from a folder of text',
    train: 'every text file',
    server: dash,
    simulate: 'code files',
    extension: 'every text file (`fedkseed.data.include`)',
    why: 'simulate deals folders to clients as code packages; `--include` changes either, and the checkpoint records it',
  },
  {
    quantity: 'shared seeds K',
    train: TRAINING_DEFAULTS.k,
    server: TRAINING_DEFAULTS.k,
    simulate: SIMULATION_DEFAULTS.k,
    extension: TRAINING_DEFAULTS.k,
    why: "simulate's few steps then touch most seeds, so Pro's importance has something to weigh",
  },
  {
    quantity: 'perturbation scale ε',
    train: sci(TRAINING_DEFAULTS.epsilon),
    server: sci(TRAINING_DEFAULTS.epsilon),
    simulate: sci(TRAINING_DEFAULTS.epsilon),
    extension: sci(TRAINING_DEFAULTS.epsilon),
    why: "the paper's",
  },
  {
    quantity: 'perturbation shape',
    train: TRAINING_DEFAULTS.shape,
    server: FEDERATION_DEFAULTS.shape,
    simulate: SIMULATION_DEFAULTS.shape,
    extension: TRAINING_DEFAULTS.shape,
    why: 'learns faster than `isotropic` at the same bytes (results.md)',
  },
  {
    quantity: 'perturbation generator',
    train: TRAINING_DEFAULTS.generator,
    server: FEDERATION_DEFAULTS.generator,
    simulate: SIMULATION_DEFAULTS.generator,
    extension: TRAINING_DEFAULTS.generator,
    why: '`rank1` learns as fast and applies rounds faster at scale; `iid` stays the default while rank1 is new (docs/zo-engine.md)',
  },
  {
    quantity: 'learning rate η',
    train: sci(TRAINING_DEFAULTS.eta),
    server: sci(FEDERATION_DEFAULTS.eta),
    simulate: sci(SIMULATION_DEFAULTS.eta),
    extension: `${sci(TRAINING_DEFAULTS.eta)} (local federation: the same)`,
    why: "a round's update averages several clients, with less noise than local steps, so a federation of several bears a larger rate",
  },
  {
    quantity: 'local steps per round τ',
    train: dash,
    server: FEDERATION_DEFAULTS.tau,
    simulate: SIMULATION_DEFAULTS.tau,
    extension: LOCAL_FEDERATION_DEFAULTS.tau,
    why: "the paper's τ = 200 across machines; rounds watched as they happen are short",
  },
  {
    quantity: 'rounds',
    train: dash,
    server: FEDERATION_DEFAULTS.rounds,
    simulate: SIMULATION_DEFAULTS.rounds,
    extension: LOCAL_FEDERATION_DEFAULTS.rounds,
    why: 'a demonstration ends in minutes',
  },
  {
    quantity: 'clients per round',
    train: dash,
    server: FEDERATION_DEFAULTS.clientsPerRound,
    simulate: SIMULATION_DEFAULTS.clients,
    extension: LOCAL_FEDERATION_DEFAULTS.clientsPerRound,
    why: "simulate samples all its clients; the extension's local federation has one",
  },
  {
    quantity: 'seed sampling',
    train: 'uniform',
    server: FEDERATION_DEFAULTS.sampling,
    simulate: SIMULATION_DEFAULTS.sampling,
    extension: LOCAL_FEDERATION_DEFAULTS.sampling,
    why: 'Pro needs rounds to learn importance; a local run has none',
  },
  {
    quantity: 'round deadline (s)',
    train: dash,
    server: FEDERATION_DEFAULTS.deadlineSeconds,
    simulate: SIMULATION_DEFAULTS.deadlineSeconds,
    extension: LOCAL_FEDERATION_DEFAULTS.deadlineSeconds,
    why: '',
  },
  { quantity: 'ZO steps of a local run', train: TRAINING_DEFAULTS.steps, server: dash, simulate: dash, extension: TRAINING_DEFAULTS.steps, why: '' },
  {
    quantity: 'held-out evaluation every',
    train: `${TRAINING_DEFAULTS.evalEvery} steps`,
    server: dash,
    simulate: 'every round',
    extension: `${TRAINING_DEFAULTS.evalEvery} steps`,
    why: '',
  },
  {
    quantity: 'held-out examples scored',
    train: TRAINING_DEFAULTS.evalExamples,
    server: dash,
    simulate: TRAINING_DEFAULTS.evalExamples,
    extension: TRAINING_DEFAULTS.evalExamples,
    why: `a federation client scores ${CLIENT_DEFAULTS.heldOutExamples} of its own before and after each round`,
  },
  {
    quantity: 'held-out share',
    train: TRAINING_DEFAULTS.heldOutFraction,
    server: dash,
    simulate: TRAINING_DEFAULTS.heldOutFraction,
    extension: TRAINING_DEFAULTS.heldOutFraction,
    why: '',
  },
  {
    quantity: 'execution provider',
    train: ENGINE_DEFAULTS.provider.cli,
    server: dash,
    simulate: ENGINE_DEFAULTS.provider.cli,
    extension: ENGINE_DEFAULTS.provider.extension,
    why: "the CLI's processes come many to a machine and would all land on one GPU; the extension runs one trainer",
  },
  { quantity: 'server port', train: dash, server: FEDERATION_DEFAULTS.port, simulate: 'any free port', extension: LOCAL_FEDERATION_DEFAULTS.port, why: '' },
];

const escape = (cell: Cell): string => String(cell).replaceAll('|', '\\|');

/** The markdown table, one row per quantity. */
export function defaultsTable(): string {
  const head = ['quantity', '`train` / `eval`', '`server`', '`simulate`', 'extension', 'why they differ'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of ROWS) lines.push(`| ${[r.quantity, r.train, r.server, r.simulate, r.extension, r.why].map(escape).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

/** The markdown table of each hyperparameter's one bound (protocol/config-limits.ts). */
export function boundsTable(): string {
  const lines = ['| quantity | bound | why |', '|---|---|---|'];
  for (const [name, b] of Object.entries(HYPERPARAMETER_BOUNDS) as [string, Bound][])
    lines.push(`| \`${name}\` | ${escape(describeBound(b))} | ${escape(b.why)} |`);
  return `${lines.join('\n')}\n`;
}

export const TABLE_START = '<!-- defaults table: made by scripts/docs/defaults-table.ts -->';
export const TABLE_END = '<!-- end of defaults table -->';
export const BOUNDS_START = '<!-- bounds table: made by scripts/docs/defaults-table.ts -->';
export const BOUNDS_END = '<!-- end of bounds table -->';
export const DEFAULTS_PAGE = join(import.meta.dirname, '..', '..', 'docs', 'defaults.md');

/** `page` with the text between `start` and `end` replaced by `table`. */
function replaceBetween(page: string, start: string, end: string, table: string): string {
  const from = page.indexOf(start);
  const to = page.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${DEFAULTS_PAGE} has no ${start} … ${end} markers`);
  return `${page.slice(0, from + start.length)}\n${table}${page.slice(to)}`;
}

/** The page with its tables replaced by today's. */
export function withTable(page: string): string {
  return replaceBetween(replaceBetween(page, TABLE_START, TABLE_END, defaultsTable()), BOUNDS_START, BOUNDS_END, boundsTable());
}

if (process.argv.includes('--write')) writeFileSync(DEFAULTS_PAGE, withTable(readFileSync(DEFAULTS_PAGE, 'utf8')));
