// Lint rules for every TypeScript area of the product; generated and bundled files are skipped.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers (docs/architecture.md): each top-level folder and the folders of ours it may import. An
// import of any other of these folders fails with the rule named. Tests, scripts and bin/ are outside.
const LAYERS = {
  protocol: [],
  contracts: ['protocol'],
  federation: ['protocol'],
  trainer: ['protocol', 'contracts'],
  simulate: ['protocol', 'contracts', 'federation', 'trainer'],
  extension: ['protocol', 'contracts'],
  webview: ['protocol', 'contracts'],
  bench: ['protocol', 'contracts', 'federation', 'trainer', 'simulate'],
  cli: ['protocol', 'contracts', 'federation', 'trainer', 'simulate', 'bench'],
};
const OURS = [...Object.keys(LAYERS), 'test', 'scripts'];

/** One `no-restricted-imports` block per layer: relative imports that reach a folder it may not import. */
const layerRules = Object.entries(LAYERS).map(([layer, allowed]) => {
  const denied = OURS.filter((folder) => folder !== layer && !allowed.includes(folder));
  const may = allowed.length > 0 ? `may import ${allowed.map((f) => `${f}/`).join(', ')} only` : 'imports nothing of ours';
  return {
    files: [`${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          // From any depth inside the layer: '../' repeated, then a denied top-level folder.
          regex: `^(\\.\\./)+(${denied.join('|')})(/|$)`,
          message: `layers: ${layer}/ ${may} (docs/architecture.md).`,
        }],
      }],
    },
  };
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
