// The packaged extension as a user gets it: the .vsix installed into a fresh VS Code, with no access
// to this repository's sources or node_modules, evaluates the bundled model through its trainer
// child process (onnxruntime-node from the package's own staged native modules).
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import type { EvaluateResult } from '../../../contracts/trainer-rpc';
import { configure, ourExtension, runOk } from '../suite/helpers';
import { SOURCES_ENV } from '../suite/results';

/** A few small TypeScript files, enough windows for a training and a held-out split. */
function writeCodeFolder(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (let file = 0; file < 6; file++) {
    const lines: string[] = [];
    for (let fn = 0; fn < 12; fn++) {
      lines.push(`export function scale${file}_${fn}(values: number[], factor = ${fn + 1}): number[] {`);
      lines.push(`  return values.map((value) => value * factor + ${file});`);
      lines.push('}', '');
    }
    writeFileSync(join(dir, `module${file}.ts`), lines.join('\n'));
  }
}

describe('the installed .vsix', function () {
  this.timeout(120_000);
  let scratch: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'fedkseed-installed-'));
    writeCodeFolder(join(scratch, 'code'));
  });

  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('is the packaged copy, not the sources', () => {
    const { extensionPath } = ourExtension();
    const sources = process.env[SOURCES_ENV];
    assert.ok(sources, `${SOURCES_ENV} is not set`);
    assert.notEqual(resolve(extensionPath), resolve(sources), 'the extension runs from the sources');
    const { publisher, name, version } = ourExtension().packageJSON as { publisher: string; name: string; version: string };
    assert.equal(basename(extensionPath), `${publisher}.${name}-${version}`, 'an installed extension lives in <publisher>.<name>-<version>');
    assert.equal(existsSync(join(extensionPath, 'extension')), false, 'the package carries no TypeScript sources');
    assert.ok(existsSync(join(extensionPath, 'dist', 'node_modules', 'onnxruntime-node')), 'onnxruntime-node is staged in the package');
  });

  it('evaluates the bundled model through its trainer child process', async () => {
    const api = await ourExtension().activate();
    await configure({ 'data.path': join(scratch, 'code'), 'model.path': '', 'training.sequenceLength': 32, 'engine.threads': 1 });
    const result = await runOk<EvaluateResult>('fedkseed.evaluateModel');
    assert.ok(Number.isFinite(result.loss) && result.loss > 0, `loss ${result.loss}`);
    assert.ok(result.examples > 0, 'some examples were scored');
    assert.ok(api.trainerPid(), 'the trainer child process runs');
  });
});
