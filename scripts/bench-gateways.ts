// The gateway-scaling benchmark against a throwaway PostgreSQL of its own (docs/benchmarks.md, "Gateways on
// PostgreSQL"): starts a server in a temporary folder as the tests do, runs `fedkseed bench federation
// --store` against it with any further arguments passed on, and removes it. Needs Debian's postgresql.
import { execFileSync } from 'node:child_process';
import { startPostgres } from '../test/helpers/postgres';

async function main(): Promise<void> {
  const pg = await startPostgres();
  try {
    execFileSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'bench', 'federation', '--store', pg.url(), ...process.argv.slice(2)], {
      env: { ...process.env, PGPASSWORD: pg.password },
      stdio: 'inherit',
    });
  } finally {
    pg.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
