import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The project's root folder: the nearest ancestor of this file holding a package.json.
 * Compiled, this file is dist/lib/storage/paths.js; from source, lib/storage/paths.ts.
 */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${__dirname}; cannot find the project folder`);
  }
}
