#!/usr/bin/env node
// The `nin` command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare) or `npm run build`.
'use strict';
let cli;
try {
  cli = require('../dist/lib/frontends/cli');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/lib/frontends/cli')) {
    process.stderr.write('nin: not built yet; run `npm run build` in the project folder first\n');
    process.exit(1);
  }
  throw err;
}
// A closed pipe (`nin shapes | head -1`) is the reader's choice, not an error.
process.stdout.on('error', (err) => { if (err.code === 'EPIPE') process.exit(0); throw err; });
cli.main(process.argv).then((code) => { process.exitCode = code; });
