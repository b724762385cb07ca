// The layering rule of eslint.config.mjs (docs/architecture.md): an import that runs back up is
// reported with the rule's message, an allowed one is not.
import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { test } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: join(import.meta.dirname, '..', '..') });

async function layerMessages(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(`${code}\nexport const used = x;\n`, { filePath });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const upward: [string, string, RegExp][] = [
  ['federation/x.ts', "import { x } from '../trainer/zo/coefficients';", /layers: federation\/ may import protocol\/ only/],
  ['federation/deep/x.ts', "import { x } from '../../trainer/engine';", /layers: federation\//],
  ['protocol/x.ts', "import { x } from '../federation/server';", /layers: protocol\/ imports nothing of ours/],
  [
    'webview/shared/x.ts',
    "import { x } from '../../trainer/host/session';",
    /layers: webview\/ may import protocol\/, contracts\/ \(not protocol\/node\/, contracts\/node\/\) only/,
  ],
  [
    'trainer/host/x.ts',
    "import { x } from '../../federation/server';",
    /layers: trainer\/host\/ may import trainer\/util\/, .*, trainer\/client\/, protocol\/, contracts\/, federation\/client\/ only/,
  ],
  ['trainer/host/x.ts', "import { x } from '../../federation';", /layers: trainer\//],
  ['federation/client/x.ts', "import { x } from '../server';", /layers: federation\/client\/ may import protocol\/ only/],
  ['federation/client/x.ts', "import { x } from '../../contracts/defaults';", /layers: federation\/client\//],
  ['federation/x.ts', "import { x } from './client';", /layers: federation\/ may import protocol\/ only/],
  ['federation/engine/x.ts', "import { x } from '../client/federation-client';", /layers: federation\//],
  ['contracts/x.ts', "import { x } from '../trainer/engine';", /layers: contracts\/ may import protocol\/ \(not protocol\/node\/\) only/],
  ['contracts/x.ts', "import { x } from './node/model-location';", /layers: contracts\/ may import protocol\/ \(not protocol\/node\/\) only/],
  [
    'webview/dashboard/x.ts',
    "import { x } from '../../contracts/node/model-location';",
    /layers: webview\/ may import protocol\/, contracts\/ \(not protocol\/node\/, contracts\/node\/\) only/,
  ],
  ['contracts/node/x.ts', "import { x } from '../webview-messages';", /layers: contracts\/node\//],
  // protocol/node/ (the frames' codec, node:zlib) is Node-only like contracts/node/: what the webviews may import may not import it.
  [
    'webview/dashboard/x.ts',
    "import { x } from '../../protocol/node/codec';",
    /layers: webview\/ may import protocol\/, contracts\/ \(not protocol\/node\/, contracts\/node\/\) only/,
  ],
  ['contracts/x.ts', "import { x } from '../protocol/node/compress';", /layers: contracts\/ may import protocol\/ \(not protocol\/node\/\) only/],
  ['protocol/x.ts', "import { x } from './node/codec';", /layers: protocol\/ imports nothing of ours/],
  ['protocol/node/x.ts', "import { x } from '../../contracts/runs';", /layers: protocol\/node\/ may import protocol\/ only/],
  ['extension/processes/x.ts', "import { x } from '../../webview/shared/format';", /layers: extension\//],
  ['simulate/x.ts', "import { x } from '../cli/options';", /layers: simulate\//],
  ['bench/x.ts', "import type { x } from '../cli/output';", /layers: bench\//],
  // Inside trainer/: util < paths < data < zo < model < device < engine < complete < eval < divergence < local-run < client < host.
  [
    'trainer/model/x.ts',
    "import { x } from '../device/providers';",
    /layers: trainer\/model\/ may import trainer\/util\/, trainer\/paths.ts, trainer\/data\/, trainer\/zo\/, protocol\/, contracts\/, federation\/client\/ only/,
  ],
  ['trainer/eval/x.ts', "import { x } from '../host/session';", /layers: trainer\/eval\//],
  ['trainer/data/x.ts', "import { x } from '../zo/generator';", /layers: trainer\/data\//],
  ['trainer/zo/wasm/x.ts', "import { x } from '../../model/onnx';", /layers: trainer\/zo\//],
  ['trainer/engine.ts', "import { x } from './complete/service';", /layers: trainer\/engine.ts/],
  ['trainer/device/x.ts', "import { x } from '../engine';", /layers: trainer\/device\//],
  [
    'trainer/util/x.ts',
    "import { x } from '../../federation/server';",
    /layers: trainer\/util\/ may import protocol\/, contracts\/, federation\/client\/ only/,
  ],
];

for (const [file, code, message] of upward) {
  test(`an upward import from ${file} is reported: ${code}`, async () => {
    const messages = await layerMessages(file, code);
    assert.equal(messages.length, 1, `expected one layering error, got ${JSON.stringify(messages)}`);
    assert.match(messages[0], message);
  });
}

const allowed: [string, string][] = [
  ['federation/x.ts', "import { x } from '../protocol';"],
  ['trainer/zo/x.ts', "import { x } from '../../protocol/exact-range';"],
  ['trainer/host/x.ts', "import { x } from '../../contracts/trainer-rpc';"],
  ['trainer/host/x.ts', "import { x } from '../../federation/client/federation-client';"],
  ['trainer/device/x.ts', "import { x } from '../model/onnx';"],
  ['trainer/eval/x.ts', "import { x } from '../complete/decoders';"],
  ['trainer/zo/wasm/x.ts', "import { x } from '../../data/rng';"],
  ['trainer/util/x.ts', "import { x } from '../../federation/client';"],
  ['trainer/local-run.ts', "import { x } from './engine';"],
  ['trainer/host/x.ts', "import { x } from '../local-run';"],
  ['trainer/client/x.ts', "import { x } from '../../federation/client';"],
  ['federation/client/x.ts', "import { x } from '../../protocol';"],
  ['federation/client/x.ts', "import { x } from '../../protocol/node/codec';"],
  ['federation/x.ts', "import { x } from '../protocol/node/codec';"],
  ['protocol/node/x.ts', "import { x } from '../messages';"],
  ['protocol/node/x.ts', "import { x } from './compress';"],
  ['federation/client/x.ts', "import { x } from './local-trainer';"],
  ['simulate/x.ts', "import { x } from '../federation/client';"],
  ['webview/sidebar/x.ts', "import { x } from '../../contracts/webview-messages';"],
  ['extension/commands/x.ts', "import { x } from '../../contracts/node/scratch-folder';"],
  ['trainer/x.ts', "import { x } from '../contracts/node/model-location';"],
  ['simulate/x.ts', "import { x } from '../federation/server';"],
  ['cli/commands/x.ts', "import { x } from '../../bench/engine';"],
];

for (const [file, code] of allowed) {
  test(`an allowed import from ${file} is not reported: ${code}`, async () => {
    assert.deepEqual(await layerMessages(file, code), []);
  });
}
