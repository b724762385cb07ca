// Past and present runs on disk: one folder per run under the extension's global storage, holding
// run.json (summary, chart series, what a resume needs; checked against contracts/runs.ts when read)
// and checkpoint.json (base identity + coefficients, written by the trainer as the run progresses).
// Writes are atomic (temp file + rename), so a reload or a crash never leaves half a record.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckpointHeader, parseRunRecord, type CheckpointHeader, type RunRecord } from '../../contracts/runs';
import { errorMessage } from '../../protocol/errors';

/** Runs kept; the oldest beyond this are removed with their checkpoints. */
export const MAX_RUNS = 50;

export class RunRecords {
  private readonly records = new Map<string, RunRecord>();

  constructor(
    readonly root: string,
    warn: (message: string) => void,
  ) {
    mkdirSync(root, { recursive: true });
    for (const id of readdirSync(root)) {
      const file = join(root, id, 'run.json');
      if (!existsSync(file)) continue;
      try {
        const parsed = parseRunRecord(JSON.parse(readFileSync(file, 'utf8')));
        if (parsed.ok && parsed.value.summary.id === id) this.records.set(id, parsed.value);
        else warn(`run ${id} is not readable and is not listed: ${parsed.ok ? 'its id differs' : parsed.error}`);
      } catch (err) {
        warn(`run ${id} is not readable and is not listed: ${errorMessage(err)}`);
      }
    }
  }

  /** Every run, newest first. */
  list(): RunRecord[] {
    return [...this.records.values()].sort((a, b) => b.summary.startedAt - a.summary.startedAt);
  }

  get(id: string): RunRecord | undefined {
    return this.records.get(id);
  }

  folder(id: string): string {
    return join(this.root, id);
  }

  checkpointPath(id: string): string {
    return join(this.folder(id), 'checkpoint.json');
  }

  hasCheckpoint(id: string): boolean {
    return existsSync(this.checkpointPath(id));
  }

  /** Whose model a run's checkpoint is, and the step or round it holds; undefined when there is none or it is unreadable. */
  checkpointHeader(id: string): CheckpointHeader | undefined {
    try {
      const parsed = parseCheckpointHeader(JSON.parse(readFileSync(this.checkpointPath(id), 'utf8')));
      return parsed.ok ? parsed.value : undefined;
    } catch {
      return undefined;
    }
  }

  save(record: RunRecord): void {
    const dir = this.folder(record.summary.id);
    mkdirSync(dir, { recursive: true });
    this.records.set(record.summary.id, record);
    const file = join(dir, 'run.json');
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(record));
    renameSync(tmp, file);
    this.prune();
  }

  remove(id: string): boolean {
    const known = this.records.delete(id);
    rmSync(this.folder(id), { recursive: true, force: true });
    return known;
  }

  private prune(): void {
    const runs = this.list();
    for (const old of runs.slice(MAX_RUNS)) {
      if (old.summary.state === 'running' || old.summary.state === 'starting') continue;
      this.remove(old.summary.id);
    }
  }
}
