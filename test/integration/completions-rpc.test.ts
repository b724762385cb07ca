// The completion request over the real trainer host process and its JSON-RPC stdio transport, as the
// extension drives it: results are valid against the contract, and a JSON-RPC cancellation (what the
// editor's CancellationToken becomes) reaches the generator, which stops between two tokens.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CancellationTokenSource, createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import { completeResultSchema, parsePayload, Requests, type CompleteParams } from '../../contracts/trainer-rpc';

const root = join(import.meta.dirname, '..', '..');
const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'trainer', 'host', 'main.ts')], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
child.stderr.resume();
let connection: MessageConnection;
const ask = (over: Partial<CompleteParams> = {}): CompleteParams => ({
  prefix: 'export function countOrders(items: Order[]): number {\n  let total = 0;\n',
  source: 'current',
  maxTokens: 200,
  sampling: { mode: 'greedy' },
  stop: 'none',
  ...over,
});

before(async () => {
  connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
  connection.listen();
  await connection.sendRequest(Requests.initialize, { provider: 'cpu', threads: 1, kernel: 'auto' });
});
after(() => {
  connection.dispose();
  child.stdin.end();
});

test('a completion over the transport fits the contract and names its source', async () => {
  const r = parsePayload(completeResultSchema, await connection.sendRequest(Requests.complete, ask({ maxTokens: 12 })));
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.value.tokens, 12);
  assert.equal(r.value.weights?.kind, 'base');
  assert.match(r.value.modelPath, /model\.onnx$/);
});

test('a cancellation sent with the request stops the generator early', async () => {
  const whole = await connection.sendRequest(Requests.complete, ask());
  assert.ok(whole.tokens > 50, `${whole.tokens} tokens uncancelled`);
  const source = new CancellationTokenSource();
  const pending = connection.sendRequest(Requests.complete, ask(), source.token);
  setTimeout(() => source.cancel(), 5);
  const r = await pending;
  assert.equal(r.finish, 'cancelled');
  assert.ok(r.tokens < whole.tokens, `${r.tokens} of ${whole.tokens} tokens`);
});
