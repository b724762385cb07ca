// `fedkseed bench federation --store postgres://… --gateways 1,2,4`: the federation server as N gateway
// processes on one PostgreSQL database beside the embedded LevelDB server, in one run: rounds committed
// and uploads aggregated per second with every client uploading each round, idle connections held and
// the gateways' memory, and the cost of one commit (K = 4096) in each store. Each configuration runs in a
// schema of its own, dropped at the end.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import WebSocket from 'ws';
import { parseServerProcessEvent, type ServerProcessSpec, type ServerProcessStats } from '../contracts/server-process';
import { LevelFederationStore } from '../federation/level-store';
import { PgFederationStore } from '../federation/pg-store';
import type { FederationState, FederationStore } from '../federation/store';
import { type FederationConfig, type SeedGradient } from '../protocol';
import { decodeMessage, encodeMessage } from '../protocol/node/codec';
import { entryInvocation } from '../simulate/cli-invocation';

export interface GatewayBenchOptions {
  /** postgres:// URL without a password (PGPASSWORD or `password` gives it). */
  readonly storeUrl: string;
  readonly password?: string;
  readonly gateways: readonly number[];
  /** Clients, every one sampled in every round. */
  readonly clients?: number;
  readonly rounds?: number;
  /** Idle WebSocket connections spread over the gateways. */
  readonly idle?: number;
  readonly commits?: number;
  readonly log?: (line: string) => void;
}

export interface ScalingRow {
  readonly store: 'LevelDB' | 'PostgreSQL';
  readonly gateways: number;
  readonly clients: number;
  readonly rounds: number;
  readonly roundsPerSecond: number;
  readonly uploadsPerSecond: number;
  readonly idleConnections: number;
  /** Summed over the gateways, with the idle connections open. */
  readonly rssBytes: number;
}

export interface CommitCost {
  readonly store: 'LevelDB' | 'PostgreSQL';
  readonly k: number;
  readonly commits: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
}

export interface GatewayBenchReport {
  readonly rows: readonly ScalingRow[];
  readonly commit: readonly CommitCost[];
}

const K = 4096;
const TAU = 200;
const MODEL_HASH = new Uint8Array(32).fill(5);

/**
 * A client that costs next to nothing, so the servers are what is measured: it answers each ROUND at
 * once with a fixed upload of τ pairs (the digest all of them share), and ends at the final SYNC.
 * Resolves with the time its first RESULT arrived.
 */
function quickClient(url: string, id: string, pairs: readonly SeedGradient[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let firstResult = 0;
    ws.on('open', () => ws.send(encodeMessage({ type: 'hello', clientId: id, token: '', modelHash: MODEL_HASH, lastSyncedRound: 0, generatorVersion: 1 })));
    ws.on('message', (data: Buffer) => {
      const m = decodeMessage(new Uint8Array(data), { k: K });
      if (m.type === 'round') {
        ws.send(
          encodeMessage({
            type: 'upload',
            round: m.round,
            examples: 10,
            lossBeforeSum: 2,
            lossBeforeCount: 1,
            lossAfterSum: 1,
            lossAfterCount: 1,
            digestRound: m.round - 1,
            digest: new Uint8Array(32),
            pairs,
          }),
        );
      } else if (m.type === 'result') {
        firstResult ||= performance.now();
      } else if (m.type === 'sync' && m.finished) {
        ws.close();
        resolve(firstResult);
      } else if (m.type === 'error') {
        ws.terminate();
        reject(new Error(`client ${id} refused: ${m.message}`));
      }
    });
    ws.on('error', reject);
  });
}

function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/** A client-side connection to a fresh schema of the database, and URLs that select it. */
async function schemaOf(o: GatewayBenchOptions, name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = new pg.Client({ ...parseIntoClientConfig(o.storeUrl), ...(o.password === undefined ? {} : { password: o.password }) });
  await admin.connect();
  await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
  await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(name)}`);
  const u = new URL(o.storeUrl);
  u.searchParams.set('options', `-c search_path=${name}`);
  return {
    url: u.toString(),
    drop: async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
      await admin.end();
    },
  };
}

function launch(spec: ServerProcessSpec, password: string | undefined): Promise<{ child: ChildProcess; url: string }> {
  const entry = entryInvocation('cli/run-server.ts', 'dist/run-server.js');
  const env = password === undefined ? process.env : { ...process.env, PGPASSWORD: password };
  const child = fork(entry.args.at(-1) as string, [JSON.stringify(spec)], {
    execPath: entry.command,
    execArgv: entry.args.slice(0, -1),
    stdio: ['ignore', 'pipe', 'ignore', 'ipc'],
    env,
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const e = parseServerProcessEvent(line);
      if (e?.event === 'listening') resolve({ child, url: e.url });
      if (e?.event === 'failed') reject(new Error(`a gateway failed: ${e.message}`));
    });
    child.once('exit', (code) => reject(new Error(`a gateway exited with ${code} before listening`)));
  });
}

function stats(child: ChildProcess): Promise<ServerProcessStats> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as ServerProcessStats));
    child.send('stats');
  });
}

async function openIdle(urls: readonly string[], n: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i += 250) {
    const batch = Array.from({ length: Math.min(250, n - i) }, (_, j) => new WebSocket(urls[(i + j) % urls.length], { perMessageDeflate: false }));
    sockets.push(...batch);
    await Promise.all(batch.map((ws) => new Promise<void>((resolve) => ws.once('open', () => resolve()).once('error', () => resolve()))));
  }
  return sockets;
}

/** One configuration: `gateways` processes (one LevelDB server when storeUrl is null), clients spread over them in turn. */
async function measure(o: GatewayBenchOptions, storeUrl: string | null, gateways: number): Promise<ScalingRow> {
  const clients = o.clients ?? 48;
  const rounds = o.rounds ?? 20;
  const config: FederationConfig = {
    k: K,
    federationSeed: 3,
    epsilon: 1e-3,
    eta: 0.01,
    tau: TAU,
    batchSize: 1,
    sampling: 'pro',
    weighting: 'examples',
    rounds,
    clientsPerRound: clients,
    deadlineMs: 60_000,
  };
  const dir = mkdtempSync(join(tmpdir(), 'fedk-scale-'));
  const spec: ServerProcessSpec = {
    config,
    model: { identity: Buffer.from(MODEL_HASH).toString('hex'), parameters: 8 },
    generatorVersion: 1,
    storePath: join(dir, 'store'),
    ...(storeUrl ? { storeUrl } : {}),
    requireToken: false,
    minClients: clients,
    maxConnections: (o.idle ?? 0) + clients + 10,
  };
  const running: ChildProcess[] = [];
  let sockets: WebSocket[] = [];
  try {
    const urls: string[] = [];
    for (let g = 0; g < gateways; g++) {
      const { child, url } = await launch(spec, o.password);
      running.push(child);
      urls.push(url);
    }
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
    const firstResults = await Promise.all(
      Array.from({ length: clients }, (_, i) =>
        quickClient(
          urls[i % urls.length],
          `s${i}`,
          Array.from({ length: TAU }, () => ({ seed: next() % K, g: Math.fround((next() / 2 ** 32 - 0.5) * 2) })),
        ),
      ),
    );
    const seconds = (performance.now() - Math.min(...firstResults.filter((t) => t > 0))) / 1000;
    sockets = await openIdle(urls, o.idle ?? 0);
    const held = (await Promise.all(running.map(stats))).reduce((s, x) => ({ rss: s.rss + x.rss, connections: s.connections + x.connections }), {
      rss: 0,
      connections: 0,
    });
    // Rounds 2..R: round 1 also waits for every client to connect.
    return {
      store: storeUrl ? 'PostgreSQL' : 'LevelDB',
      gateways,
      clients,
      rounds,
      roundsPerSecond: (rounds - 1) / seconds,
      uploadsPerSecond: ((rounds - 1) * clients) / seconds,
      idleConnections: held.connections,
      rssBytes: held.rss,
    };
  } finally {
    sockets.forEach((s) => s.terminate());
    for (const c of running) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Median and p95 time of `n` commits of a K = 4096 state and record, one after another. */
async function commitCost(store: FederationStore, name: CommitCost['store'], n: number): Promise<CommitCost> {
  const times: number[] = [];
  const v = (): Float64Array => Float64Array.from({ length: K }, (_, j) => j);
  for (let r = 1; r <= n; r++) {
    const state: FederationState = { round: r, coefficients: v(), residual: v(), importanceSum: v(), importanceCount: v() };
    const t0 = performance.now();
    await store.commitRound(state, {
      round: r,
      change: v(),
      participants: ['a', 'b'],
      examples: 2,
      lossBefore: 1,
      lossAfter: 1,
      committedAt: new Date().toISOString(),
    });
    times.push(performance.now() - t0);
  }
  return { store: name, k: K, commits: n, p50Ms: quantile(times, 0.5), p95Ms: quantile(times, 0.95) };
}

export async function runGatewayBench(o: GatewayBenchOptions): Promise<GatewayBenchReport> {
  const log = o.log ?? (() => {});
  const rows: ScalingRow[] = [];
  const level = await measure(o, null, 1);
  rows.push(level);
  log(`LevelDB, 1 server: ${level.roundsPerSecond.toFixed(1)} rounds/s, ${level.uploadsPerSecond.toFixed(0)} uploads/s`);
  for (const n of o.gateways) {
    const schema = await schemaOf(o, `fedkseed_bench_${n}`);
    try {
      const row = await measure(o, schema.url, n);
      rows.push(row);
      log(`PostgreSQL, ${n} gateway(s): ${row.roundsPerSecond.toFixed(1)} rounds/s, ${row.uploadsPerSecond.toFixed(0)} uploads/s`);
    } finally {
      await schema.drop();
    }
  }
  const commits = o.commits ?? 40;
  const dir = mkdtempSync(join(tmpdir(), 'fedk-commit-'));
  const commit: CommitCost[] = [];
  try {
    const levelStore = await LevelFederationStore.open(join(dir, 'store'));
    try {
      commit.push(await commitCost(levelStore, 'LevelDB', commits));
    } finally {
      await levelStore.close();
    }
    const schema = await schemaOf(o, 'fedkseed_bench_commit');
    try {
      const pgStore = await PgFederationStore.open(schema.url, o.password === undefined ? {} : { password: o.password });
      try {
        commit.push(await commitCost(pgStore, 'PostgreSQL', commits));
      } finally {
        await pgStore.close();
      }
    } finally {
      await schema.drop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, commit };
}
