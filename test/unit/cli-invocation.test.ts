// The project's licence and metadata, and the command the CLI suggests in its hints: as the person ran it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { invokedAs } from '../../cli/invocation';
import { packageRoot } from '../../trainer/paths';

const root = packageRoot();

test('LICENSE is the MIT licence of the FedKSeed contributors, as package.json says; no placeholder repository', () => {
  const license = readFileSync(join(root, 'LICENSE'), 'utf8');
  assert.match(license, /^MIT License\n/);
  assert.match(license, /Copyright \(c\) \d{4} FedKSeed contributors/);
  const manifest = readFileSync(join(root, 'package.json'), 'utf8');
  assert.equal((JSON.parse(manifest) as { license: string }).license, 'MIT');
  assert.doesNotMatch(manifest, /example\.invalid/);
  assert.ok(readFileSync(join(root, '.vscodeignore'), 'utf8').split('\n').includes('!LICENSE'), 'the .vsix carries the licence');
});

test('hints name the command as it was run: npx, a fedkseed on PATH, or node with the path to bin/fedkseed.js', () => {
  const bin = join(root, 'bin', 'fedkseed.js');
  assert.equal(invokedAs(['node', bin], { npm_command: 'exec' }, '/somewhere/else'), 'npx fedkseed');
  assert.equal(invokedAs(['node', '/usr/local/bin/fedkseed'], {}, '/somewhere/else'), 'fedkseed');
  // Inside the package's folder npx finds the bin; elsewhere it would ask the registry.
  assert.equal(invokedAs(['node', bin], {}, root), 'npx fedkseed');
  assert.equal(invokedAs(['node', bin], {}, join(root, 'docs')), 'npx fedkseed');
  const elsewhere = invokedAs(['node', bin], {}, '/');
  assert.match(elsewhere, /^node \S*bin\/fedkseed\.js$/);
  assert.notEqual(elsewhere, 'fedkseed');
});
