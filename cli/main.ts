// Entry point of the `fedkseed` command-line tool: one subcommand per job, each in its own module.
import { Command, CommanderError } from 'commander';
import { registerEval } from './commands/eval';
import { registerTrain } from './commands/train';
import { registerExport } from './commands/export';
import { registerServer } from './commands/server';
import { registerTokens } from './commands/tokens';
import { registerClient } from './commands/client';
import { registerSimulate } from './commands/simulate';
import { registerBench } from './commands/bench';
import { registerInspect } from './commands/inspect';
import { registerGenerate } from './commands/generate';
import { CliError } from './errors';
import { suggest } from './invocation';
import { version } from '../package.json';
import { errorMessage } from '../protocol/errors';

export function buildProgram(): Command {
  const program = new Command('fedkseed')
    .description('Federated full-parameter fine-tuning with zeroth-order optimisation over K shared seeds (FedKSeed).')
    .version(version)
    // A subcommand's options after its name are its own (server backup --store), not its parent's.
    .enablePositionalOptions()
    .exitOverride();
  registerEval(program);
  registerTrain(program);
  registerExport(program);
  registerServer(program);
  registerTokens(program);
  registerClient(program);
  registerSimulate(program);
  registerBench(program);
  registerInspect(program);
  registerGenerate(program);
  // A wrong option prints its one-line error and where the options are, not the whole help.
  const hint = (cmd: Command, path: string[]): void => {
    cmd.showHelpAfterError(`(${suggest([...path, '--help'].join(' '))} lists the options)`);
    for (const sub of cmd.commands) hint(sub, [...path, sub.name()]);
  };
  hint(program, []);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    const message = errorMessage(err);
    process.stderr.write(`fedkseed: ${message}\n`);
    if (process.env.FEDKSEED_DEBUG && err instanceof Error && !(err instanceof CliError)) process.stderr.write(`${err.stack}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  }
}

void main(process.argv);
