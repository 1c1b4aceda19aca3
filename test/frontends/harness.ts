/** Running `nin` in-process for the command-line tests (no tests here): its exit code and what it wrote. */
import assert from 'node:assert/strict';
import { main } from '../../lib/frontends/cli';

export interface Run {
  code: number;
  out: string;
  err: string;
}

/** Runs `nin ...args` and captures what it writes. */
export async function nin(...args: string[]): Promise<Run> {
  let out = '';
  let err = '';
  const code = await main(['node', 'nin', ...args], {
    out: (t) => { out += t; },
    err: (t) => { err += t; },
    isTTY: false,
  });
  return { code, out, err };
}

/** Asserts stderr is exactly one line (newline-terminated) and returns it. */
export function oneLine(err: string): string {
  assert.ok(err.endsWith('\n'), `stderr should end with a newline: ${JSON.stringify(err)}`);
  const lines = err.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `stderr should be one line, got:\n${err}`);
  return lines[0];
}
