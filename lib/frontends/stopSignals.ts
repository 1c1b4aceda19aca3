/**
 * Stopping a run from outside, the way people and machines do it: Ctrl-C (SIGINT), SIGTERM
 * (`timeout`, systemd, `docker stop`), SIGHUP (a closed terminal), and the parent process
 * going away (`npx nin …` killed: npm exits without passing the signal on, and the run
 * would train on as an orphan). The first of these asks the run to stop after the current
 * step and save; a second signal exits at once.
 */

/** What stopped the run, and the exit status a shell gives a process stopped that way. */
export interface StopReason {
  /** `Ctrl-C`, `SIGTERM`, `SIGHUP` or `parent exited`. */
  what: string;
  /** 128 + the signal number: 130, 143, 129 (and 129 for a lost parent, like a hang-up). */
  exitCode: number;
}

const SIGNALS: Record<'SIGINT' | 'SIGTERM' | 'SIGHUP', StopReason> = {
  SIGINT: { what: 'Ctrl-C', exitCode: 130 },
  SIGTERM: { what: 'SIGTERM', exitCode: 143 },
  SIGHUP: { what: 'SIGHUP', exitCode: 129 },
};

/** The exit status of a process stopped by SIGINT (128 + 2). */
export const EXIT_INTERRUPTED = 130;

/** Work was stopped from outside (after saving what it could); the command exits like a shell would. */
export class Interrupted extends Error {
  override name = 'Interrupted';
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

/** How often the parent process is looked for. */
const PARENT_POLL_MS = 250;

export interface StopWatch {
  signal: AbortSignal;
  /** Why the run was asked to stop; undefined while it was not. */
  reason(): StopReason | undefined;
  /** Removes the handlers. */
  remove(): void;
}

/**
 * Watches for the signals above while a run trains. `say` tells the user what happens
 * (`nin: Ctrl-C: stopping after this step …`); `exit` ends the process on a second signal.
 */
export function watchStopSignals(say: (line: string) => void, exit: (code: number) => void = process.exit): StopWatch {
  const controller = new AbortController();
  let stoppedBy: StopReason | undefined;
  const stop = (reason: StopReason) => {
    if (stoppedBy !== undefined) {
      say(`${reason.what} again: exiting now; the last complete checkpoint stays as it was`);
      exit(stoppedBy.exitCode);
      return;
    }
    stoppedBy = reason;
    say(`${reason.what}: stopping after this step (press Ctrl-C again to quit at once)`);
    controller.abort();
  };
  const handlers = Object.entries(SIGNALS).map(([name, reason]) => {
    const handler = () => stop(reason);
    process.on(name as NodeJS.Signals, handler);
    return [name, handler] as const;
  });
  const parent = process.ppid;
  const poll = setInterval(() => {
    if (process.ppid !== parent && stoppedBy === undefined) stop({ what: `parent process ${parent} exited`, exitCode: 129 });
  }, PARENT_POLL_MS);
  poll.unref();
  return {
    signal: controller.signal,
    reason: () => stoppedBy,
    remove: () => {
      clearInterval(poll);
      for (const [name, handler] of handlers) process.off(name, handler);
    },
  };
}
