import type { Command } from 'commander';
import { CliError } from '../errors';

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('Benchmarks that print ratios measured side by side in one run');
  for (const name of ['engine', 'federation', 'study']) {
    bench
      .command(name)
      .description(`(pending) ${name} benchmark`)
      .action(() => {
        throw new CliError(`fedkseed bench ${name} is not available in this build yet`);
      });
  }
}
