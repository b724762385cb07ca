#!/usr/bin/env node
'use strict';
// The `fedkseed` command: a thin launcher for the bundled CLI (built by `npm install` / `npm run build`).
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'dist', 'cli.js');
if (!existsSync(cli)) {
  console.error('fedkseed: dist/cli.js is missing; run `npm run build` in ' + join(__dirname, '..'));
  process.exit(1);
}
require(cli);
