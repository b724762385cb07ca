// Bad dataset input is never dropped silently: every problem is either collected (policy 'skip')
// or thrown at once (policy 'strict'), always naming the file and the line.

export type BadInputPolicy = 'skip' | 'strict';

export interface DataProblem {
  /** File the problem is in, as given to the reader. */
  readonly file: string;
  /** 1-based line; 0 when the problem concerns the whole file. */
  readonly line: number;
  readonly message: string;
}

export function formatProblem(p: DataProblem): string {
  return p.line > 0 ? `${p.file}:${p.line}: ${p.message}` : `${p.file}: ${p.message}`;
}

export class DataError extends Error {
  constructor(readonly problem: DataProblem) {
    super(formatProblem(problem));
    this.name = 'DataError';
  }
}

/** Collects problems under a policy; 'strict' turns the first one into a thrown DataError. */
export class ProblemLog {
  private readonly items: DataProblem[] = [];

  constructor(
    readonly policy: BadInputPolicy = 'skip',
    private readonly onProblem?: (p: DataProblem) => void,
  ) {}

  report(file: string, line: number, message: string): void {
    const problem: DataProblem = { file, line, message };
    if (this.policy === 'strict') throw new DataError(problem);
    this.items.push(problem);
    this.onProblem?.(problem);
  }

  get problems(): readonly DataProblem[] {
    return this.items;
  }
}
