// What the format readers produce, before tokenisation. Every record remembers where it came from
// so later stages can still report problems as file:line.

export interface SourceRef {
  readonly file: string;
  /** 1-based line of the record's start; 0 for whole-file records. */
  readonly line: number;
}

/** Instruction-following data (Dolly, Alpaca, Natural Instructions). */
export interface InstructionRecord {
  readonly kind: 'instruction';
  readonly id: string;
  /** Category / task name; used for non-IID client splits. */
  readonly group: string;
  readonly instruction: string;
  /** Dolly "context", Alpaca "input", NI instance input; '' when absent. */
  readonly input: string;
  readonly output: string;
  readonly source: SourceRef;
}

/** A whole text or code file. */
export interface TextRecord {
  readonly kind: 'text';
  /** Path relative to the glob root, with '/' separators; also the record's id. */
  readonly id: string;
  /** Top-level folder of the path ('.' for files at the root). */
  readonly group: string;
  readonly text: string;
  readonly source: SourceRef;
}

/** Already tokenised sequence. */
export interface TokenRecord {
  readonly kind: 'tokens';
  readonly id: string;
  readonly group: string;
  readonly inputIds: readonly number[];
  /** 1 where token t is a prediction target; absent = every token. */
  readonly lossMask?: readonly number[];
  readonly source: SourceRef;
}

export type DataRecord = InstructionRecord | TextRecord | TokenRecord;

/** A file or path that was deliberately not read (binary, too large, excluded type). */
export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}
