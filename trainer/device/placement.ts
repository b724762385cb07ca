// Which execution provider onnxruntime assigns each node of a graph to, read from its own verbose log.
// The log comes from native code on the process's stderr, so the session is created in a child Node
// process whose stderr is captured; its lines "Node(s) placed on [X]. Number of nodes: N" (followed by one
// "OpType (name)" line per node) or "All nodes placed on [X]" are parsed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PlacedNode {
  readonly opType: string;
  readonly name: string;
}

export interface NodePlacement {
  /** Provider name as onnxruntime logs it (e.g. 'WebGpuExecutionProvider') → its nodes; counts only when all nodes are on one. */
  readonly providers: ReadonlyMap<string, { readonly count: number; readonly nodes: readonly PlacedNode[] }>;
  /** Nodes on any provider other than `expected`. */
  readonly elsewhere: readonly (PlacedNode & { readonly provider: string })[];
  /** Memcpy nodes onnxruntime inserted between providers (0 when the whole graph is on one device). */
  readonly copies: number;
}

const PROVIDER_LOG_NAMES: Record<string, string> = {
  cpu: 'CPUExecutionProvider',
  webgpu: 'WebGpuExecutionProvider',
  cuda: 'CUDAExecutionProvider',
  dml: 'DmlExecutionProvider',
  coreml: 'CoreMLExecutionProvider',
};

const CHILD = `
const ort = require(process.argv[1]);
ort.env.logLevel = 'verbose';
ort.InferenceSession.create(process.argv[2], {
  executionProviders: [process.argv[3]], graphOptimizationLevel: 'all', logSeverityLevel: 0, logVerbosityLevel: 0,
}).then(() => process.stderr.write('\\nPLACEMENT-DONE\\n'), (e) => { process.stderr.write('\\nPLACEMENT-FAILED ' + e.message + '\\n'); process.exitCode = 3; });
`;

/** Parses onnxruntime's verbose session log; `expected` is the provider (our name) every node should be on. */
export function parsePlacementLog(log: string, expected: string): NodePlacement {
  const providers = new Map<string, { count: number; nodes: PlacedNode[] }>();
  let current: { count: number; nodes: PlacedNode[] } | null = null;
  let copies = 0;
  for (const line of log.split('\n')) {
    const all = /All nodes placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    const some = /Node\(s\) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    const head = all ?? some;
    if (head) {
      current = { count: Number(head[2]), nodes: [] };
      providers.set(head[1], current);
      continue;
    }
    const entry = /VerifyEachNodeIsAssignedToAnEp\]\s{3,}(\S+) \((.*)\)\s*$/.exec(line);
    if (entry && current) {
      current.nodes.push({ opType: entry[1], name: entry[2] });
      if (entry[1].startsWith('Memcpy')) copies++;
      continue;
    }
    if (!/VerifyEachNodeIsAssignedToAnEp/.test(line)) current = null;
  }
  const want = PROVIDER_LOG_NAMES[expected] ?? expected;
  const elsewhere = [...providers].filter(([p]) => p !== want).flatMap(([provider, v]) => v.nodes.map((n) => ({ ...n, provider })));
  return { providers, elsewhere, copies };
}

/**
 * Creates a session over `model` on `provider` in a child process and reports where each node went.
 * Rejects with the child's message when the session cannot be created.
 */
export async function nodePlacement(
  model: Uint8Array,
  provider: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<NodePlacement & { readonly log: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'fedkseed-placement-'));
  try {
    const file = join(dir, 'model.onnx');
    writeFileSync(file, model);
    const ortPath = require.resolve('onnxruntime-node');
    const log = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', CHILD, ortPath, file, provider], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.stderr.on('data', (c: Buffer) => chunks.push(c));
      child.on('error', reject);
      child.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    const failed = /PLACEMENT-FAILED (.*)/.exec(log);
    if (failed || !log.includes('PLACEMENT-DONE')) throw new Error(`session creation on ${provider} failed: ${failed?.[1] ?? log.slice(-2000)}`);
    return { ...parsePlacementLog(log, provider), log };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
