// The webviews run in a browser: every file their bundles reach, type-only imports included (tsc reads
// those too), is free of Node. The program is webview/tsconfig.json's, which `npm run typecheck` checks
// without Node's types (types: []), so a Node global (Buffer, process) fails there; this test names the
// imports: a Node built-in (node:zlib, fs), or the Node-only folders protocol/node/ and contracts/node/.
import { strict as assert } from 'node:assert';
import { isBuiltin } from 'node:module';
import { join, relative, sep } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const root = join(import.meta.dirname, '..', '..');
const NODE_ONLY = ['protocol/node/', 'contracts/node/'];

/** The webview program's files outside node_modules (repository-relative), with a text replaced where `overrides` says. */
function webviewProgram(overrides: Record<string, string> = {}): ts.Program {
  const configPath = join(root, 'webview', 'tsconfig.json');
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    { ...ts.sys, onUnRecoverableConfigFileDiagnostic: (d) => assert.fail(String(d.messageText)) },
  );
  assert.ok(config, `${configPath} does not parse`);
  const host = ts.createCompilerHost(config.options);
  const readFile = host.readFile.bind(host);
  host.readFile = (file) => overrides[relative(root, file).split(sep).join('/')] ?? readFile(file);
  return ts.createProgram({ rootNames: config.fileNames, options: config.options, host });
}

/** What in the program needs Node: "file: reason" lines. */
function nodeReach(program: ts.Program): string[] {
  const found: string[] = [];
  for (const source of program.getSourceFiles()) {
    const file = relative(root, source.fileName).split(sep).join('/');
    if (file.includes('node_modules/@types/node/')) found.push(`${file}: Node's types are in the program`);
    if (file.startsWith('..') || file.includes('node_modules/')) continue;
    if (NODE_ONLY.some((folder) => file.startsWith(folder))) found.push(`${file}: a Node-only folder`);
    for (const { fileName } of ts.preProcessFile(source.text, true, true).importedFiles) {
      if (isBuiltin(fileName)) found.push(`${file}: imports ${fileName}`);
    }
  }
  return found;
}

test('what the webviews reach (type-only imports included) imports no Node module and no Node-only folder', () => {
  const program = webviewProgram();
  const files = program.getSourceFiles().map((s) => relative(root, s.fileName).split(sep).join('/'));
  // The program reaches the shared layers the webviews use, so the check covers them.
  assert.ok(files.includes('contracts/webview-messages.ts') && files.includes('protocol/messages.ts'), files.join('\n'));
  assert.deepEqual(nodeReach(program), []);
});

test('the check sees a Node import in a reached shared file and a reached Node-only file', () => {
  const program = webviewProgram({
    'protocol/format.ts': "import { gzipSync } from 'node:zlib';\nexport const z = gzipSync;\n",
    'protocol/messages.ts': "export type { DecodeContext } from './node/codec';\n",
  });
  const found = nodeReach(program);
  assert.ok(found.includes('protocol/format.ts: imports node:zlib'), found.join('\n'));
  assert.ok(found.includes('protocol/node/codec.ts: a Node-only folder'), found.join('\n'));
  assert.ok(found.includes('protocol/node/compress.ts: imports node:zlib'), found.join('\n'));
});
