// Lint rules for every TypeScript area of the product; generated and bundled files are skipped.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers (docs/architecture.md): each layer (a folder, or a sub-folder or file inside one) and the
// layers it may import; a folder granted grants the layers inside it unless one is refused with '!'. An
// import of any other layer fails with the rule named. A layer inside another keeps what the outer one
// may import, and its rules replace the outer one's for its files. Tests, scripts and bin/ are outside.
const LAYERS = {
  protocol: [],
  // Node-only (node:zlib, node:crypto): the frames' codec and its compressed blocks.
  'protocol/node': ['protocol'],
  contracts: ['protocol', '!protocol/node'],
  // Node-only (node:fs, node:os): the webviews run in a browser.
  'contracts/node': ['protocol'],
  'federation/client': ['protocol'],
  federation: ['protocol'],
  trainer: ['protocol', 'contracts', 'federation/client'],
  simulate: ['protocol', 'contracts', 'federation', 'trainer'],
  extension: ['protocol', 'contracts'],
  webview: ['protocol', '!protocol/node', 'contracts', '!contracts/node'],
  bench: ['protocol', 'contracts', 'federation', 'trainer', 'simulate'],
  cli: ['protocol', 'contracts', 'federation', 'trainer', 'simulate', 'bench'],
};
// Inside trainer/, from the bottom: each sub-layer may import those before it (and what trainer/ may).
const TRAINER = ['util', 'paths', 'data', 'zo', 'model', 'device', 'engine', 'complete', 'eval', 'divergence', 'local-run', 'client', 'host'];
TRAINER.forEach((name, i) => {
  LAYERS[`trainer/${name}`] = TRAINER.slice(0, i).map((lower) => `trainer/${lower}`);
});
const OUTSIDE = ['test', 'scripts'];
// Deepest folder a layer's files sit in, counted from the repository root (trainer/zo/wasm/ is 3).
const MAX_DEPTH = 6;

const segments = (path) => path.split('/');
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** Whether `inner` is `outer` or inside it. */
const within = (inner, outer) => inner === outer || inner.startsWith(`${outer}/`);
/** A layer that is one file (trainer/engine.ts) rather than a folder. */
const isFile = (layer) => existsSync(join(import.meta.dirname, `${layer}.ts`));
const shown = (layer) => (isFile(layer) ? `${layer}.ts` : `${layer}/`);
const bare = (entry) => entry.replace(/^!/, '');
/** A layer's own entries, then those of the layers around it (LAYERS lists an outer layer before its inner ones). */
const entriesOf = (layer) => [
  ...new Set(
    Object.keys(LAYERS)
      .filter((l) => within(layer, l))
      .reverse()
      .flatMap((l) => LAYERS[l]),
  ),
];

/** Whether `layer` may import `target`: the most specific entry covering the target decides. */
function mayImport(layer, target) {
  if (target === layer) return true;
  const entry = entriesOf(layer)
    .filter((e) => within(target, bare(e)))
    .sort((x, y) => segments(bare(y)).length - segments(bare(x)).length)[0];
  return entry !== undefined && !entry.startsWith('!');
}

const END = '(/|\\.[cm]?[jt]s$|$)';
/**
 * The relative specifier's pattern from a file `depth` folders deep in `layer` to `target` (no anchor),
 * less the layers inside the target in `spared`. A target around the layer is reached by climbing to
 * it and stepping into none of the layers inside it: its own files.
 */
function reachPattern(layer, depth, target, spared) {
  const t = segments(target);
  const l = segments(layer);
  let common = 0;
  while (common < t.length && common < l.length && t[common] === l[common]) common++;
  const up = depth - common;
  const climb = up === 0 ? '\\./' : `(\\.\\./){${up}}`;
  if (common === t.length) {
    const inside = [...new Set([...Object.keys(LAYERS), layer].filter((x) => x !== target && within(x, target)).map((x) => segments(x)[t.length]))];
    return `${climb}(?!(${inside.map(escape).join('|')})${END})[^./]`;
  }
  const rest = t.slice(common).map(escape).join('/');
  const tails = spared.map((s) => `/${segments(s).slice(t.length).map(escape).join('/')}${END}`);
  return `${climb}${rest}${tails.length > 0 ? `(?!${tails.join('|')})` : ''}${END}`;
}

/**
 * One `no-restricted-imports` block per layer and folder depth of its files: from a file that deep, a
 * relative import reaches a denied layer through one path only, the climb to their common folder. Outer
 * layers come first, so a file's innermost layer is the block that applies to it.
 */
const layerRules = Object.keys(LAYERS)
  .sort((a, b) => segments(a).length - segments(b).length)
  .flatMap((layer) => {
    const targets = [...Object.keys(LAYERS), ...OUTSIDE];
    const denied = targets.filter((t) => !mayImport(layer, t));
    const entries = entriesOf(layer);
    const refused = entries.filter((e) => e.startsWith('!')).map((e) => shown(bare(e)));
    const may =
      entries.length > 0
        ? `may import ${entries
            .filter((e) => !e.startsWith('!'))
            .map(shown)
            .join(', ')}${refused.length > 0 ? ` (not ${refused.join(', ')})` : ''} only`
        : 'imports nothing of ours';
    const depths = isFile(layer)
      ? [segments(layer).length - 1]
      : Array.from({ length: MAX_DEPTH - segments(layer).length + 1 }, (_, i) => segments(layer).length + i);
    return depths.map((depth) => {
      const patterns = denied.map((target) =>
        reachPattern(
          layer,
          depth,
          target,
          targets.filter((s) => s !== target && within(s, target) && mayImport(layer, s)),
        ),
      );
      return {
        files: [isFile(layer) ? `${layer}.ts` : `${layer}/${'*/'.repeat(depth - segments(layer).length)}*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [{ regex: `^(${patterns.join('|')})`, message: `layers: ${shown(layer)} ${may} (docs/architecture.md).` }],
            },
          ],
        },
      };
    });
  });

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'test-results/**', 'models/**', '**/*.generated.ts', 'bin/**', 'media/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  ...layerRules,
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', require: 'readonly', __dirname: 'readonly' } },
  },
);
