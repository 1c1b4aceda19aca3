/**
 * One writer per checkpoint folder: a lock file that names the run holding the folder.
 *
 * `DIR/nin.lock` is created exclusively (O_EXCL), which fails when the file exists, so of
 * two runs started at once exactly one gets it. The file says who holds it (process id, host,
 * start time, command); a second run is refused with those details. A lock left by a run
 * that was killed (`kill -9`, a power cut) is taken over once its process is gone. The
 * holder checks that the lock is still its own before each save. The lock file and its folder
 * are fsynced once written, so that after a crash of the machine the file says who held it
 * rather than being empty. A lock file that is not a regular file (a FIFO) is never read.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileError, fsReason, isObject, readRegularFile, syncDir, userFsCode } from './files';
import { ConfigError } from '../core/validate';

export const LOCK_FILE = 'nin.lock';

/** What the lock file records. */
export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

/** Whether process `pid` is alive on this host (EPERM: alive, but not ours to signal). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const value = JSON.parse(readRegularFile(file, '').toString('utf8')) as unknown;
    return isObject(value) && Number.isInteger(value.pid) ? value as unknown as LockOwner : undefined;
  } catch {
    return undefined;
  }
}

/** The lock's owner is a run that has ended: its process is gone (on this host). */
function stale(owner: LockOwner | undefined): boolean {
  return owner !== undefined && owner.host === os.hostname() && !alive(owner.pid);
}

/** A held lock on a folder; {@link release} it when the run ends. */
export class FolderLock {
  private constructor(readonly dir: string, readonly file: string, private readonly owner: LockOwner) {}

  /**
   * Takes the lock of `dir` (which must exist) for this process, or throws a ConfigError
   * naming the run that holds it. `what` names the folder in messages (`checkpoint directory`).
   */
  static acquire(dir: string, what = 'checkpoint directory'): FolderLock {
    const file = path.join(dir, LOCK_FILE);
    const owner: LockOwner = {
      pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString(), command: process.argv.slice(1).join(' '),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      if (FolderLock.tryCreate(file, owner, what)) return new FolderLock(dir, file, owner);
      const holder = readOwner(file);
      if (!stale(holder)) {
        const who = holder ? `process ${holder.pid} on ${holder.host}, started ${holder.startedAt}: ${holder.command}` : 'a run whose lock file cannot be read';
        throw new ConfigError(`${what} ${dir} is in use by another run (${who}); wait for it to finish or choose another ` +
          `directory (if no such run exists, delete ${file})`);
      }
      fs.rmSync(file, { force: true }); // its run is gone
    }
    throw new ConfigError(`${what} ${dir}: could not take its lock ${file}; try again`);
  }

  /**
   * Creates the lock file with O_EXCL (atomic on local and network file systems alike);
   * false when one already exists. Until its content is written a reader sees an empty file,
   * which counts as held. The content and the folder's new entry are flushed to disk.
   */
  private static tryCreate(file: string, owner: LockOwner, what: string): boolean {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new FileError(`${what} ${path.dirname(file)} cannot be locked for this run ${fsReason(err)}; ` +
        'choose a directory you can write to', userFsCode(err));
    }
    try {
      fs.writeFileSync(fd, `${JSON.stringify(owner)}\n`);
      fs.fsyncSync(fd);
    } catch (err) {
      fs.rmSync(file, { force: true });
      throw new FileError(`${what} ${path.dirname(file)} cannot be locked for this run ${fsReason(err)}; ` +
        'free some space or choose another directory', userFsCode(err));
    } finally {
      fs.closeSync(fd);
    }
    syncDir(path.dirname(file));
    return true;
  }

  /** Throws unless the lock file is still this run's (another run may have removed it). */
  assertHeld(): void {
    const now = readOwner(this.file);
    if (now?.pid !== this.owner.pid || now.startedAt !== this.owner.startedAt) {
      throw new ConfigError(`the lock ${this.file} is no longer this run's (it was removed or taken over by ` +
        `${now ? `process ${now.pid}` : 'nobody'}); stopping without saving so as not to write over another run`);
    }
  }

  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): void {
    if (readOwner(this.file)?.pid === this.owner.pid && readOwner(this.file)?.startedAt === this.owner.startedAt) {
      fs.rmSync(this.file, { force: true });
    }
  }
}
