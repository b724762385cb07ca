// The study: every task × method × repeat, then results.json, the SVG figures and the markdown table.
// Results are rewritten after every run, so an interrupted study still leaves everything done so far.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { studyCharts } from './charts';
import type { StudyConfig, TaskSpec } from './config';
import { runFederation, type RunResult } from './run-federation';
import { markdownTable, summarise, type MethodSummary } from './summary';
import { prepareTask, type PreparedTask, type TaskSources } from './tasks';

export interface StudyOptions {
  readonly config: StudyConfig;
  readonly outDir: string;
  /** Also write the figures here (e.g. docs/images). */
  readonly imagesDir?: string;
  readonly sources: Omit<TaskSources, 'workDir'>;
  readonly signal: AbortSignal;
  readonly log: (line: string) => void;
  /** The command line, recorded in results.json. */
  readonly command: string;
}

export interface TaskResult {
  readonly task: TaskSpec;
  readonly data: PreparedTask['data'];
  readonly parameters: number | null;
  readonly summaries: MethodSummary[];
}

export interface StudyResults {
  readonly status: 'completed' | 'interrupted';
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly seconds: number;
  readonly machine: { readonly cpu: string; readonly cores: number; readonly memoryGiB: number; readonly node: string; readonly platform: string };
  readonly commit: string | null;
  readonly config: StudyConfig;
  readonly tasks: TaskResult[];
  readonly runs: RunResult[];
  readonly files: string[];
  readonly table: string;
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export async function runStudy(o: StudyOptions): Promise<StudyResults> {
  const startedAt = new Date();
  // The commit whose working tree the code task reads, taken before anything is read.
  const commit = gitCommit();
  const { config } = o;
  mkdirSync(o.outDir, { recursive: true });
  const workDir = join(o.outDir, 'work');
  const runs: RunResult[] = [];
  const prepared: PreparedTask[] = [];
  let status: StudyResults['status'] = 'completed';

  const write = (): StudyResults => {
    const tasks: TaskResult[] = prepared.map((t) => {
      const taskRuns = runs.filter((r) => r.task === t.spec.id);
      const summaries = config.methods.flatMap(
        (m) =>
          summarise(
            t.spec,
            m,
            taskRuns.filter((r) => r.method === m.id),
          ) ?? [],
      );
      return { task: t.spec, data: t.data, parameters: taskRuns[0]?.parameters ?? null, summaries };
    });
    const files: string[] = [];
    const tables: string[] = [];
    for (const t of tasks) {
      if (t.summaries.length === 0 || t.parameters === null) continue;
      tables.push(markdownTable(t.task, t.parameters, t.summaries));
      const byMethod = new Map(t.summaries.map((s) => [s.method, s]));
      for (const chart of studyCharts(
        t.task,
        config.methods,
        byMethod,
        runs.filter((r) => r.task === t.task.id),
      )) {
        for (const dir of [o.outDir, o.imagesDir]) {
          if (!dir) continue;
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, chart.file), `${chart.svg}\n`);
        }
        files.push(chart.file);
      }
    }
    const table = tables.join('\n\n');
    writeFileSync(join(o.outDir, 'results.md'), `${table}\n`);
    const cpu = cpus();
    const results: StudyResults = {
      status,
      command: o.command,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: (Date.now() - startedAt.getTime()) / 1000,
      machine: {
        cpu: cpu[0]?.model ?? 'unknown',
        cores: cpu.length,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        platform: `${process.platform}-${process.arch}`,
      },
      commit,
      config,
      tasks,
      runs,
      files: ['results.json', 'results.md', ...files],
      table,
    };
    writeFileSync(join(o.outDir, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
    return results;
  };

  let results: StudyResults;
  try {
    outer: for (const spec of config.tasks) {
      o.log(`preparing ${spec.id}…`);
      const task = await prepareTask(spec, { ...o.sources, workDir }, config.seed);
      prepared.push(task);
      o.log(
        `${spec.id}: ${task.data.train} training windows in ${task.data.groups} groups over ${spec.clients} clients, ${task.heldOut.length} held-out windows evaluated`,
      );
      for (let repeat = 0; repeat < spec.repeats; repeat++) {
        for (const method of config.methods) {
          if (o.signal.aborted) break outer;
          o.log(`${spec.id} ${method.label}, repeat ${repeat + 1}/${spec.repeats}`);
          const run = await runFederation(task, method, repeat, { config, signal: o.signal, log: o.log });
          runs.push(run);
          o.log(
            `${spec.id} ${method.id} #${repeat}: ${run.rounds[0].heldOutLoss.toFixed(4)} → ${run.rounds[run.rounds.length - 1].heldOutLoss.toFixed(4)} in ${run.seconds.toFixed(0)} s`,
          );
          write();
        }
      }
    }
  } finally {
    if (o.signal.aborted) status = 'interrupted';
    results = write();
    rmSync(workDir, { recursive: true, force: true });
  }
  return results;
}
