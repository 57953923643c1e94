/**
 * Child processes for integration tests: run a command (optionally inside a network namespace),
 * send its output to a log file, wait for a readiness condition, and stop it by PID.
 *
 * Safety rules:
 *  - Only processes spawned here are ever signalled, by their own PID, and only while Node has
 *    not yet seen them exit (so a recycled PID is never hit).
 *  - `ip netns exec NS cmd` execs (no fork), so the PID we get is the PID of `cmd` itself.
 *  - Every long-running child is tracked; `stopAll()` runs from a test's `after`, and a
 *    process-wide hook SIGKILLs survivors on 'exit' and stops them on SIGINT/SIGTERM/SIGHUP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { constants } from 'node:os';

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Label used in error messages. */
  readonly name: string;
  readonly cmd: string;
  readonly args?: readonly string[];
  /** Run inside this network namespace (`ip netns exec NS cmd args...`). */
  readonly netns?: string;
  /** stdout and stderr are appended to this file (only stderr with `pipe`). */
  readonly logFile: string;
  /** Give the process pipes for stdin and stdout (`stdin`, `stdout`); stderr goes to logFile. */
  readonly pipe?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const tracked = new Set<ManagedProcess>();

/** Builds argv for running `cmd` in `netns` (or directly when netns is undefined). */
export function inNetns(
  netns: string | undefined,
  cmd: string,
  args: readonly string[],
): [string, string[]] {
  return netns === undefined ? [cmd, [...args]] : ['ip', ['netns', 'exec', netns, cmd, ...args]];
}

export class ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly startedAt: number;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  #child: ChildProcess;
  #exit: ExitInfo | undefined;
  #spawnError: Error | undefined;

  constructor(opts: SpawnOptions) {
    this.name = opts.name;
    this.logFile = opts.logFile;
    const [cmd, args] = inNetns(opts.netns, opts.cmd, opts.args ?? []);
    const fd = openSync(opts.logFile, 'a');
    try {
      this.startedAt = performance.now();
      this.#child = spawn(cmd, args, {
        stdio: opts.pipe ? ['pipe', 'pipe', fd] : ['ignore', fd, fd],
        env: opts.env ?? process.env,
        cwd: opts.cwd,
      });
    } finally {
      closeSync(fd);
    }
    if (this.#child.pid === undefined) {
      // spawn() failed synchronously (e.g. ENOENT); the 'error' event carries the reason.
      this.pid = -1;
    } else {
      this.pid = this.#child.pid;
    }
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo): void => {
        if (this.#exit) return;
        this.#exit = info;
        tracked.delete(this);
        resolve(info);
      };
      this.#child.once('exit', (code, signal) => done({ code, signal }));
      this.#child.once('error', (err) => {
        this.#spawnError = err;
        // A spawn failure (no PID) means there is no process; other errors (e.g. a failed
        // kill()) leave it running, and 'exit' will follow.
        if (this.#child.pid === undefined || this.#child.exitCode !== null) {
          done({ code: null, signal: null });
        }
      });
    });
    tracked.add(this);
    installExitHooks();
  }

  /** stdin of a process spawned with `pipe` (undefined otherwise). */
  get stdin(): NodeJS.WritableStream | undefined {
    return this.#child.stdin ?? undefined;
  }

  /** stdout of a process spawned with `pipe` (undefined otherwise). */
  get stdout(): NodeJS.ReadableStream | undefined {
    return this.#child.stdout ?? undefined;
  }

  /** True until Node has seen the process exit. */
  get running(): boolean {
    return this.#exit === undefined && this.#child.exitCode === null && !this.#child.signalCode;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** Sends a signal to this process only (by PID), if it is still running. */
  signal(sig: NodeJS.Signals): boolean {
    if (!this.running || this.pid <= 0) return false;
    return this.#child.kill(sig);
  }

  /**
   * SIGTERM, then SIGKILL if the process has not exited after `graceMs`. Resolves with its exit.
   */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.running) {
      this.signal('SIGTERM');
      const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    }
    return this.exited;
  }

  /** The last `maxLines` lines of the log file (for error messages). */
  logTail(maxLines = 30): string {
    try {
      const text = readFileSync(this.logFile, 'utf8');
      const lines = text.split('\n');
      return lines.slice(Math.max(0, lines.length - maxLines - 1)).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Size of the log file in bytes (0 if absent). */
  logSize(): number {
    try {
      return statSync(this.logFile).size;
    } catch {
      return 0;
    }
  }

  /**
   * Polls `cond` until it returns a truthy value, which is returned. Fails early, with the log
   * tail, if the process exits; fails after `timeoutMs` naming `what`, also with the log tail.
   */
  async waitFor<T>(
    what: string,
    cond: () => Promise<T | undefined | null | false> | T | undefined | null | false,
    opts: { timeoutMs?: number; intervalMs?: number } = {},
  ): Promise<T> {
    const label = `${this.name} (pid ${this.pid})`;
    try {
      return await waitUntil(what, cond, {
        ...opts,
        abortIf: () => {
          if (this.running) return undefined;
          const e = this.#exit ?? { code: this.#child.exitCode, signal: this.#child.signalCode };
          const why = this.#spawnError ? ` (${this.#spawnError.message})` : '';
          return `exited (code ${e.code}, signal ${e.signal})${why}`;
        },
      });
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw new Error(`${label}: ${msg}; log ${this.logFile}:\n${this.logTail()}`, { cause: err });
    }
  }
}

/** Starts a tracked long-running process. */
export function spawnManaged(opts: SpawnOptions): ManagedProcess {
  return new ManagedProcess(opts);
}

/** Processes started here that Node has not yet seen exit. */
export function runningProcesses(): readonly ManagedProcess[] {
  return [...tracked].filter((p) => p.running);
}

/** Stops every tracked process (SIGTERM, then SIGKILL after `graceMs`), in parallel. */
export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...tracked].map((p) => p.stop(graceMs)));
}

let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL whatever is still running (ours only).
  process.on('exit', () => {
    for (const p of tracked) p.signal('SIGKILL');
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      void stopAll(1000).finally(() => process.exit(128 + constants.signals[sig]));
    });
  }
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time from spawn to exit, in milliseconds. */
  readonly ms: number;
}

export interface RunOptions {
  readonly netns?: string;
  /** Kill (SIGKILL, by PID) and reject if the command runs longer than this. Default 15 s. */
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs a short command to completion and collects its output. Never throws for a non-zero exit. */
export function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const [c, a] = inNetns(opts.netns, cmd, args);
  const timeoutMs = opts.timeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(c, a, {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${[c, ...a].join(' ')}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const r: RunResult = {
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: performance.now() - t0,
      };
      if (timedOut) {
        reject(
          new Error(
            `${[c, ...a].join(' ')} timed out after ${timeoutMs} ms; stdout: ${r.stdout.trim()}; ` +
              `stderr: ${r.stderr.trim()}`,
          ),
        );
      } else {
        resolve(r);
      }
    });
  });
}

/** Like run(), but rejects with the command, exit status and output unless it exits 0. */
export async function runOk(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    const where = opts.netns ? ` (netns ${opts.netns})` : '';
    throw new Error(
      `${[cmd, ...args].join(' ')}${where} failed with ${r.code ?? r.signal}: ` +
        `${(r.stderr + r.stdout).trim()}`,
    );
  }
  return r;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number;
  /** Pause between polls (default 20 ms). */
  readonly intervalMs?: number;
  /** Checked before each poll: a returned string aborts the wait with that reason. */
  readonly abortIf?: () => string | undefined;
}

/**
 * Polls `cond` until it returns a truthy value (which is returned). Rejects naming `what` after
 * `timeoutMs`, including the last error `cond` threw, or as soon as `abortIf` gives a reason.
 */
export async function waitUntil<T>(
  what: string,
  cond: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  let lastErr: unknown;
  while (true) {
    const abort = opts.abortIf?.();
    if (abort !== undefined) throw new Error(`${abort} while waiting for ${what}`);
    try {
      const v = await cond();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (performance.now() >= deadline) {
      const detail = lastErr instanceof Error ? `; last error: ${lastErr.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}
