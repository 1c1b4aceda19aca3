/**
 * The environment variables the kernels read (NIN_BACKEND, NIN_NATIVE, NIN_NATIVE_CONV,
 * OMP_NUM_THREADS): checked as strictly as flags, named as themselves in one-line refusals,
 * and a thread count above the machine's CPUs capped (it crashed the native addon: "oneDNN:
 * st failed", the Winograd out of memory, a segmentation fault), with a note and the real
 * count in the banner. Child processes: the addon reads them once, when it loads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ConfigError, envChoice, envInt, positiveInt } from '../../lib/core/validate';
import { availableCpus, checkNativeEnv, nativeAddonPath } from '../../lib/kernels/native';
import { packageRoot } from '../../lib/storage/paths';

const built = fs.existsSync(nativeAddonPath());
const cpus = os.availableParallelism();

/** `nin ...args` in a child process with `env` over this one's (NODE_TEST_CONTEXT left out). */
function nin(env: Record<string, string>, ...args: string[]) {
  const { NODE_TEST_CONTEXT: _, OMP_NUM_THREADS: __, NIN_NATIVE: ___, NIN_BACKEND: ____, NIN_NATIVE_CONV: _____, ...own } = process.env;
  const r = spawnSync(process.execPath, [path.join(packageRoot(), 'bin', 'nin.js'), ...args],
    { encoding: 'utf8', env: { ...own, ...env }, timeout: 120_000 });
  return { code: r.status, signal: r.signal, out: r.stdout, err: r.stderr };
}

const refusal = (message: string) => (e: unknown) => e instanceof ConfigError && e.message === message;

test('envChoice: unset or empty is undefined; an exact choice; anything else names the variable', () => {
  assert.equal(envChoice('NIN_NATIVE', {}, ['0', '1']), undefined);
  assert.equal(envChoice('NIN_NATIVE', { NIN_NATIVE: '' }, ['0', '1']), undefined);
  assert.equal(envChoice('NIN_NATIVE', { NIN_NATIVE: '0' }, ['0', '1']), '0');
  assert.throws(() => envChoice('NIN_NATIVE', { NIN_NATIVE: 'false' }, ['0', '1']), refusal('NIN_NATIVE must be 0 or 1, got "false"'));
  assert.throws(() => envChoice('NIN_NATIVE', { NIN_NATIVE: ' 1' }, ['0', '1']), refusal('NIN_NATIVE must be 0 or 1, got " 1"'));
  assert.throws(() => envChoice('NIN_BACKEND', { NIN_BACKEND: 'WASM' }, ['auto', 'wasm', 'cpu']),
    refusal('NIN_BACKEND must be one of auto, wasm, cpu, got "WASM"'));
});

test('envInt: decimal digits alone, at least the minimum, exact', () => {
  assert.equal(envInt('OMP_NUM_THREADS', {}), undefined);
  assert.equal(envInt('OMP_NUM_THREADS', { OMP_NUM_THREADS: '' }), undefined);
  assert.equal(envInt('OMP_NUM_THREADS', { OMP_NUM_THREADS: '8' }), 8);
  for (const bad of ['0', '-2', '1.5', '2,1', ' 2', '1e3', 'four', '0x10']) {
    assert.throws(() => envInt('OMP_NUM_THREADS', { OMP_NUM_THREADS: bad }),
      refusal(`OMP_NUM_THREADS must be an integer >= 1, got ${JSON.stringify(bad)}`), bad);
  }
  assert.throws(() => envInt('OMP_NUM_THREADS', { OMP_NUM_THREADS: '9007199254740993' }),
    refusal('OMP_NUM_THREADS 9007199254740993 is beyond the largest exact integer, 9007199254740991'));
});

test('positiveInt: an integer past 2^53 is refused as such, not as out of range', () => {
  for (const max of [undefined, 2 ** 60]) {
    assert.throws(() => positiveInt('seed', 2 ** 53 + 2, 0, max),
      (e: unknown) => e instanceof ConfigError && e.messageFor({ seed: '--seed' }) ===
        '--seed 9007199254740994 is beyond the largest exact integer, 9007199254740991');
  }
  assert.equal(positiveInt('seed', Number.MAX_SAFE_INTEGER, 0), Number.MAX_SAFE_INTEGER);
});

test('checkNativeEnv: NIN_NATIVE_CONV and OMP_NUM_THREADS checked, the thread count capped at the CPUs', () => {
  assert.equal(availableCpus(), cpus);
  assert.deepEqual(checkNativeEnv({}), { conv: undefined, threads: undefined, cappedThreads: undefined });
  assert.deepEqual(checkNativeEnv({ OMP_NUM_THREADS: '1', NIN_NATIVE_CONV: 'blas' }), { conv: 'blas', threads: 1, cappedThreads: 1 });
  assert.deepEqual(checkNativeEnv({ OMP_NUM_THREADS: '100000' }), { conv: undefined, threads: 100000, cappedThreads: cpus });
  assert.throws(() => checkNativeEnv({ OMP_NUM_THREADS: '-1' }), refusal('OMP_NUM_THREADS must be an integer >= 1, got "-1"'));
  assert.throws(() => checkNativeEnv({ NIN_NATIVE_CONV: 'mkl' }),
    refusal('NIN_NATIVE_CONV must be one of blas, dnnl, dnnl-direct, got "mkl"'));
});

test('OMP_NUM_THREADS far above the CPUs: nin shapes and nin bench run, with a note, on the real thread count', {
  skip: built ? false : 'the native addon is not built',
}, () => {
  const shapes = nin({ OMP_NUM_THREADS: '100000' }, 'shapes', '--size', '67');
  assert.equal(shapes.code, 0, shapes.err);
  assert.equal(shapes.err, `nin: note: OMP_NUM_THREADS=100000 is more than the ${cpus} CPU${cpus === 1 ? '' : 's'} ` +
    `this process may use; using ${cpus}\n`);
  assert.match(shapes.out, /^NiN for one 67×67/);
  // 4096 failed oneDNN's scratchpad, 20000 ran the Winograd out of memory, 100000 crashed.
  for (const asked of ['4096', '100000']) {
    const bench = nin({ OMP_NUM_THREADS: asked }, 'bench', '--resize', '67', '--batch-size', '2', '--steps', '1', '--json');
    assert.equal(bench.signal, null, `OMP_NUM_THREADS=${asked}: ${bench.signal}`);
    assert.equal(bench.code, 0, bench.err);
    const { backend } = JSON.parse(bench.out) as { backend: string };
    const count = `${cpus} thread${cpus === 1 ? '' : 's'}`;
    assert.ok(backend.includes(`native convolutions (`) && backend.includes(`, ${count}; OMP_NUM_THREADS=${asked} is more than`), backend);
  }
});

test('the banner shows the thread count OMP_NUM_THREADS sets, not OpenBLAS\'s alone', {
  skip: !built ? 'the native addon is not built' : cpus < 2 ? 'one CPU' : false,
}, () => {
  const r = nin({ OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '2' }, 'bench', '--resize', '67', '--batch-size', '2', '--steps', '1');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out.split('\n')[0], /native convolutions \([^,]+, 1 thread \(OpenBLAS: 2\)\)$/);
  const one = nin({ OMP_NUM_THREADS: '1' }, 'bench', '--resize', '67', '--batch-size', '2', '--steps', '1');
  assert.match(one.out.split('\n')[0], /native convolutions \([^,]+, 1 thread\)$/, one.err);
});

test('bad values of the environment variables: exit 1, one line naming the variable, never a flag', () => {
  const cases: [Record<string, string>, string][] = [
    [{ OMP_NUM_THREADS: '0' }, 'nin: OMP_NUM_THREADS must be an integer >= 1, got "0"'],
    [{ OMP_NUM_THREADS: '2.5' }, 'nin: OMP_NUM_THREADS must be an integer >= 1, got "2.5"'],
    [{ NIN_NATIVE: 'false' }, 'nin: NIN_NATIVE must be 0 or 1, got "false"'],
    [{ NIN_BACKEND: 'gpu' }, 'nin: NIN_BACKEND must be one of auto, tensorflow, wasm, cpu, got "gpu"'],
  ];
  for (const [env, line] of cases) {
    const r = nin(env, 'shapes', '--size', '67');
    assert.equal(r.code, 1, JSON.stringify(env));
    assert.equal(r.err, `${line}\n`);
    assert.equal(r.out, '');
  }
  // NIN_NATIVE=0 turns the native kernels off (and only 0 does).
  const off = nin({ NIN_NATIVE: '0' }, 'bench', '--resize', '67', '--batch-size', '2', '--steps', '1', '--json');
  assert.equal(off.code, 0, off.err);
  assert.doesNotMatch(JSON.parse(off.out).backend, /native/);
});
