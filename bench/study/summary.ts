// Per-method figures over repeats (mean, sd, min, max) and the markdown table block.
import { fedAvgBytesPerClient } from '../../protocol';
import { formatBytes } from '../../protocol/format';
import type { MethodSpec, TaskSpec } from './config';
import type { RunResult } from './run-federation';

export interface Spread {
  readonly mean: number;
  readonly sd: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spread(values: readonly number[]): Spread {
  const xs = values.filter(Number.isFinite);
  const n = xs.length;
  if (n === 0) return { mean: NaN, sd: NaN, min: NaN, max: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, min: Math.min(...xs), max: Math.max(...xs), n };
}

export interface MethodSummary {
  readonly task: string;
  readonly method: string;
  readonly label: string;
  readonly k: number | null;
  readonly repeats: number;
  /** Completed rounds common to every repeat. */
  readonly rounds: number;
  readonly baseLoss: Spread;
  readonly finalLoss: Spread;
  /** Final − base, per repeat. */
  readonly lossChange: Spread;
  /** Per round r = 0…rounds: held-out loss over repeats. */
  readonly lossByRound: Spread[];
  /** Per round: cumulative bytes of all clients over repeats. */
  readonly cumulativeBytesByRound: Spread[];
  /** Bytes (up + down) per participating client per round, over every client-round of every repeat. */
  readonly bytesPerClientRound: Spread;
  readonly upPerClientRound: Spread;
  readonly downPerClientRound: Spread;
  readonly seedsTouched: Spread;
  /** Seconds of local training per round (all participants, one after another). */
  readonly trainSecondsPerRound: Spread;
  readonly runSeconds: Spread;
  readonly replicasVerified: boolean;
}

export function summarise(task: TaskSpec, method: MethodSpec, runs: readonly RunResult[]): MethodSummary | null {
  if (runs.length === 0) return null;
  const rounds = Math.min(...runs.map((r) => r.rounds.length - 1));
  const at = (r: number, f: (x: RunResult['rounds'][number]) => number) => spread(runs.map((run) => f(run.rounds[r])));
  const clientRounds = runs.flatMap((run) => run.rounds.slice(1, rounds + 1).flatMap((x) => x.bytesPerClient));
  const committed = runs.flatMap((run) => run.rounds.slice(1, rounds + 1));
  return {
    task: task.id,
    method: method.id,
    label: method.label,
    k: method.k,
    repeats: runs.length,
    rounds,
    baseLoss: at(0, (x) => x.heldOutLoss),
    finalLoss: at(rounds, (x) => x.heldOutLoss),
    lossChange: spread(runs.map((run) => run.rounds[rounds].heldOutLoss - run.rounds[0].heldOutLoss)),
    lossByRound: Array.from({ length: rounds + 1 }, (_, r) => at(r, (x) => x.heldOutLoss)),
    cumulativeBytesByRound: Array.from({ length: rounds + 1 }, (_, r) => at(r, (x) => x.cumulativeBytes)),
    bytesPerClientRound: spread(clientRounds.map((b) => b.up + b.down)),
    upPerClientRound: spread(clientRounds.map((b) => b.up)),
    downPerClientRound: spread(clientRounds.map((b) => b.down)),
    seedsTouched: at(rounds, (x) => x.seedsTouched),
    trainSecondsPerRound: spread(committed.map((x) => x.trainSeconds)),
    runSeconds: spread(runs.map((run) => run.seconds)),
    replicasVerified: committed.every((x) => x.verified !== false),
  };
}

const pm = (s: Spread, digits = 4): string => (s.n === 0 ? '—' : s.n > 1 ? `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}` : s.mean.toFixed(digits));
const signed = (s: Spread, digits = 4): string =>
  s.n === 0 ? '—' : `${s.mean >= 0 ? '+' : '−'}${Math.abs(s.mean).toFixed(digits)}${s.n > 1 ? ` ± ${s.sd.toFixed(digits)}` : ''}`;

/** The paper's per-client-round bound for K seeds and τ steps: 4 B + 4K B of coefficients + 8τ B of pairs. */
export function paperBytes(k: number, tau: number): number {
  return 4 + 4 * k + 8 * tau;
}

/** One markdown table per task: final loss, bytes and time per method. */
export function markdownTable(task: TaskSpec, parameters: number, summaries: readonly MethodSummary[]): string {
  const fedAvg = fedAvgBytesPerClient(parameters);
  const head = [
    `**${task.title}**: ${task.clients} clients, ${task.clientsPerRound} per round, ${summaries[0]?.rounds ?? task.rounds} rounds × τ = ${task.tau} steps, batch ${task.batchSize} × ${task.seqLen} tokens, ε = ${task.epsilon}, η = ${task.eta}; ${summaries[0]?.repeats ?? 0} repeats (mean ± sd). FedAvg would move ${formatBytes(fedAvg)} per client per round (d = ${parameters.toLocaleString('en-US')}).`,
    '',
    '| method | held-out loss, final | change from base | seeds used | bytes / client / round (up + down) | max | paper bound 4+4K+8τ | FedAvg ÷ this | train s / round | replicas exact |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const rows = summaries.map((s) => {
    const b = s.bytesPerClientRound;
    return `| ${s.label} | ${pm(s.finalLoss)} | ${signed(s.lossChange)} | ${Math.round(s.seedsTouched.mean).toLocaleString('en-US')} | ${formatBytes(b.mean)} (${formatBytes(s.upPerClientRound.mean)} + ${formatBytes(s.downPerClientRound.mean)}) | ${formatBytes(b.max)} | ${s.k === null ? '—' : formatBytes(paperBytes(s.k, task.tau))} | ${(fedAvg / b.mean).toExponential(1)} | ${s.trainSecondsPerRound.mean.toFixed(1)} | ${s.replicasVerified ? 'yes' : 'NO'} |`;
  });
  const base = summaries[0]?.baseLoss;
  return [...head, ...rows, '', base ? `Base model held-out loss: ${pm(base)}.` : ''].join('\n');
}
