import type { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogRecord = { readonly event: string } & Readonly<Record<string, unknown>>;
export type Logger = (level: LogLevel, record: LogRecord) => void;

/** Structured logs: one JSON object per line, with time and level first. */
export function jsonLinesLogger(stream: Writable | undefined): Logger {
  if (!stream) return () => {};
  return (level, record) => {
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, ...record })}\n`);
  };
}
