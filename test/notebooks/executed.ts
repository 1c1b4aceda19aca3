/**
 * Both notebooks executed headless in the tiny profile (scripts/run_notebooks.py --iopub, as
 * `npm run notebooks` does, recording each cell's kernel messages), once per test run, shared
 * by every suite that looks at what they show (notebooks, browser, jupyterlab). Executing the
 * chapter notebook takes minutes; each suite executing its own copy made it five times.
 *
 * The first suite that asks executes them into a folder under the system's temporary folder,
 * named after the test run (the `node --test` process that started this file, with its start
 * time, so a later run never reads this one's) and a hash of what the outputs depend on: the
 * notebooks, the script and the built library (dist/lib). Later suites of the same run find it
 * there, failure included (each then reports the same failure rather than executing again).
 * Folders of runs that have ended are removed when the next one starts. (No tests here.)
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../lib/storage/paths';
import { PYTHON } from '../optional';

export interface ExecutedNotebooks {
  /** Holds NAME.ipynb, NAME.html and NAME.iopub.json for nin and exercises. */
  dir: string;
  /** The NIN_RUNS_DIR they ran with: the chapter run's checkpoints (runs/chapter-tiny). */
  runs: string;
  /** The environment they ran in: what a deliberate re-execution must run with to find those checkpoints. */
  env: NodeJS.ProcessEnv;
  /** run_notebooks.py's exit status (null when it was killed) and what it printed. */
  status: number | null;
  output: string;
  /** Whether this process executed them (false: an earlier suite of this run did). */
  executedHere: boolean;
}

const root = packageRoot();
const PREFIX = 'nin-executed-';

/** The executed notebooks of this test run, executing them first if no suite of it has yet. */
export function executedNotebooks(): ExecutedNotebooks {
  const tmp = os.tmpdir();
  const run = testRunId();
  removeEndedRuns(tmp);
  const dir = path.join(tmp, `${PREFIX}${run}-${inputsHash()}`);
  const runs = path.join(dir, 'runs');
  const env = { ...process.env, NIN_PROFILE: 'tiny', NIN_RUNS_DIR: runs };
  const resultFile = path.join(dir, 'result.json');
  if (fs.existsSync(resultFile)) {
    const { status, output } = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as { status: number | null; output: string };
    return { dir, runs, env, status, output, executedHere: false };
  }
  // Executed into a folder of its own, then renamed: a folder under the final name is complete.
  const partial = `${dir}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  const partialEnv = { ...env, NIN_RUNS_DIR: path.join(partial, 'runs') };
  const r = spawnSync(PYTHON, [path.join(root, 'scripts', 'run_notebooks.py'), '--out', partial, '--timeout', '600', '--iopub'],
    { encoding: 'utf8', env: partialEnv, timeout: 15 * 60_000, maxBuffer: 64 << 20 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`;
  fs.writeFileSync(path.join(partial, 'result.json'), JSON.stringify({ status: r.status, output }));
  try {
    fs.renameSync(partial, dir);
  } catch {
    fs.rmSync(partial, { recursive: true, force: true }); // another process of this run finished first: use its
    return executedNotebooks();
  }
  return { dir, runs, env, status: r.status, output, executedHere: true };
}

/** The test run this process belongs to: its parent (the `node --test` runner) and that parent's start time. */
function testRunId(): string {
  return `${process.ppid}-${startTime(process.ppid) ?? 0}`;
}

/** A process's start time in clock ticks since boot (Linux), undefined when it is gone or unknown. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]; // field 22, counted after the command name
  } catch {
    return undefined;
  }
}

/** Removes the folders (and half-written ones) of test runs whose runner has exited. */
function removeEndedRuns(tmp: string): void {
  for (const name of fs.readdirSync(tmp)) {
    const m = /^nin-executed-(\d+)-(\d+)-/.exec(name);
    if (m && startTime(Number(m[1])) !== m[2] && m[2] !== '0') fs.rmSync(path.join(tmp, name), { recursive: true, force: true });
  }
}

/** What the executed outputs depend on: the notebooks, the script that runs them, and the built library they import. */
function inputsHash(): string {
  const hash = createHash('sha256');
  const files = [
    ...fs.readdirSync(path.join(root, 'notebooks')).filter((f) => f.endsWith('.ipynb')).sort().map((f) => path.join(root, 'notebooks', f)),
    path.join(root, 'scripts', 'run_notebooks.py'),
    ...filesUnder(path.join(root, 'dist', 'lib')),
  ];
  for (const f of files) hash.update(path.relative(root, f)).update('\0').update(fs.readFileSync(f)).update('\0');
  return hash.digest('hex').slice(0, 16);
}

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : e.name.endsWith('.js') ? [path.join(dir, e.name)] : []));
}
