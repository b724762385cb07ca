// Trainer notifications are checked where they enter the extension's process: a payload that does not
// fit its schema is dropped and reported, the others reach their handlers as sent.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkTrainerNotification } from '../../contracts/trainer-notifications';
import { idleTrainerStatus, Notifications, type TrainerStatus } from '../../contracts/trainer-rpc';
import { TrainerProcess } from '../../extension/processes/trainerProcess';

test('every trainer notification has its schema; other methods are not judged', () => {
  assert.deepEqual(checkTrainerNotification(Notifications.status.method, idleTrainerStatus), { ok: true, value: idleTrainerStatus });
  const bad = checkTrainerNotification(Notifications.steps.method, { points: [{ step: -1, round: 0, loss: 1 }] });
  assert.ok(bad && !bad.ok && /points\.0\.step/.test(bad.error));
  assert.ok(!checkTrainerNotification(Notifications.log.method, { level: 'loud', message: 'x' })?.ok);
  assert.equal(checkTrainerNotification('fedkseed/unknown', {}), null);
  for (const n of Object.values(Notifications)) assert.notEqual(checkTrainerNotification(n.method, undefined), null, n.method);
});

test('a trainer process passes valid notifications on and drops an invalid one with a report', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedk-notify-'));
  try {
    // A stand-in trainer: two status notifications, the second malformed, then a log line; it stays until stdin closes.
    const frame = (method: string, params: unknown) => {
      const body = JSON.stringify({ jsonrpc: '2.0', method, params });
      return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };
    const frames = [
      frame(Notifications.status.method, { ...idleTrainerStatus, step: 3 }),
      frame(Notifications.status.method, { ...idleTrainerStatus, state: 'dancing' }),
      frame(Notifications.log.method, { level: 'info', message: 'done' }),
    ];
    const script = join(dir, 'trainer.js');
    writeFileSync(script, `process.stdout.write(${JSON.stringify(frames.join(''))}); process.stdin.resume();`);
    const reported: string[] = [];
    const trainer = TrainerProcess.start(
      script,
      () => {},
      (line) => reported.push(line),
    );
    const statuses: TrainerStatus[] = [];
    const logged = new Promise<string>((resolve) => trainer.connection.onNotification(Notifications.log, (m) => resolve(m.message)));
    trainer.connection.onNotification(Notifications.status, (s) => statuses.push(s));
    assert.equal(await logged, 'done');
    assert.deepEqual(
      statuses.map((s) => s.step),
      [3],
    );
    assert.equal(reported.length, 1);
    assert.match(reported[0], /invalid fedkseed\/status notification.*state/);
    await trainer.kill(1000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
