/** lib/storage/folderLock.ts: one writer per folder; a killed run's lock is taken over; a lock taken from us is noticed. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FolderLock, LOCK_FILE } from '../../lib/storage/folderLock';
import { ConfigError } from '../../lib/core/validate';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nin-lock-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let count = 0;
const freshDir = () => {
  const dir = path.join(tmp, `d${++count}`);
  fs.mkdirSync(dir);
  return dir;
};

/** The pid of a process that has certainly ended. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(child.stdout.toString());
}

test('a second lock on the same folder is refused, naming the holder; after release it can be taken', () => {
  const dir = freshDir();
  const first = FolderLock.acquire(dir);
  assert.throws(() => FolderLock.acquire(dir), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, new RegExp(`^checkpoint directory ${dir} is in use by another run \\(process ${process.pid} on ${os.hostname()}, started `));
    assert.match(err.message, /if no such run exists, delete .*nin\.lock/);
    return true;
  });
  first.release();
  assert.ok(!fs.existsSync(path.join(dir, LOCK_FILE)), 'release removes the lock file');
  FolderLock.acquire(dir).release();
  assert.deepEqual(fs.readdirSync(dir), [], 'no temporary files left');
});

test("a killed run's lock (its process is gone) is taken over", () => {
  const dir = freshDir();
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: os.hostname(), startedAt: 'then', command: 'nin train' }));
  const lock = FolderLock.acquire(dir);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
  lock.release();
});

test('a lock that is no longer ours is noticed before a save, and release leaves the other run\'s lock alone', () => {
  const dir = freshDir();
  const lock = FolderLock.acquire(dir);
  lock.assertHeld();
  const other = { pid: 1, host: os.hostname(), startedAt: 'now', command: 'nin train (another)' };
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(other));
  assert.throws(() => lock.assertHeld(), /is no longer this run's .*process 1/);
  lock.release();
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, LOCK_FILE), 'utf8')), other);
});
