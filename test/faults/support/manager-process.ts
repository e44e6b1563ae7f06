import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import type { ChildCommand, ChildMessage, ChildSpec } from './protocol.js';

/**
 * The test's handle on one worker process (`manager-child.ts`): spawn it, read its reports,
 * command it, or kill it with SIGKILL at the moment a scenario chooses.
 */

const root = fileURLToPath(new URL('../../../', import.meta.url));
const childScript = fileURLToPath(new URL('./manager-child.ts', import.meta.url));

/** Every process spawned and not yet gone, so a failing test leaves none behind. */
const alive = new Set<ManagerProcess>();

/** Kills every worker process still running (call it from `afterAll`). */
export async function killAllManagerProcesses(): Promise<void> {
  await Promise.all([...alive].map((child) => child.kill()));
}

/** Options of {@link ManagerProcess.spawn}. */
export interface SpawnOptions {
  /** Modules loaded before the child (`--import`), e.g. the clock-skew preload. */
  readonly preload?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

type Waiter = {
  readonly predicate: (message: ChildMessage) => boolean;
  readonly resolve: (message: ChildMessage) => void;
};

/** One running worker process. */
export class ManagerProcess {
  readonly spec: ChildSpec;
  /** Every message received, in order. */
  readonly messages: ChildMessage[] = [];
  /** `Date.now()` when the process was spawned. */
  readonly spawnedAt = Date.now();
  /** `Date.now()` when SIGKILL was sent (null until then). */
  killedAt: number | null = null;
  /** Resolves when the process has exited (for whatever reason). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>;
  #stderr = '';
  #waiters: Waiter[] = [];
  #gone = false;

  private constructor(spec: ChildSpec, options: SpawnOptions) {
    this.spec = spec;
    const imports = ['tsx', ...(options.preload ?? [])].flatMap((module) => ['--import', module]);
    this.#child = spawn(process.execPath, [...imports, childScript, JSON.stringify(spec)], {
      cwd: root,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stdin.on('error', () => undefined);
    this.#child.stderr.setEncoding('utf8');
    this.#child.stderr.on('data', (chunk: string) => {
      // Keep the tail only: it is shown when the process fails.
      this.#stderr = (this.#stderr + chunk).slice(-4_000);
    });
    createInterface({ input: this.#child.stdout }).on('line', (line) => this.#receive(line));
    this.exited = once(this.#child, 'exit').then(([code, signal]) => {
      this.#gone = true;
      alive.delete(this);
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
    alive.add(this);
  }

  /** Spawns a worker process; resolves once it reports `connected` (and `started`, unless held). */
  static async spawn(spec: ChildSpec, options: SpawnOptions = {}): Promise<ManagerProcess> {
    const child = new ManagerProcess(spec, options);
    await child.waitFor(
      (message) => message.type === (spec.holdStart === true ? 'connected' : 'started'),
      30_000,
      'start-up',
    );
    return child;
  }

  get pid(): number {
    return this.#child.pid!;
  }

  /** Whether the process is still running. */
  get running(): boolean {
    return !this.#gone;
  }

  /** The last lines the process wrote to stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Messages of one type. */
  ofType<T extends ChildMessage['type']>(type: T): Array<Extract<ChildMessage, { type: T }>> {
    return this.messages.filter(
      (message): message is Extract<ChildMessage, { type: T }> => message.type === type,
    );
  }

  /**
   * Resolves with the first message (already received or still to come) that satisfies
   * `predicate`; rejects after `timeoutMs` or when the process exits first.
   */
  waitFor(
    predicate: (message: ChildMessage) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<ChildMessage> {
    const known = this.messages.find(predicate);
    if (known) return Promise.resolve(known);
    return this.#next(predicate, timeoutMs, what);
  }

  /** Sends a command. */
  command(command: ChildCommand): void {
    this.#child.stdin.write(`${command}\n`);
  }

  /** Calls `manager.start()` in the child (first start of a held child, or a restart). */
  async start(timeoutMs = 10_000): Promise<void> {
    const before = this.ofType('started').length;
    this.command('start');
    await this.waitFor(() => this.ofType('started').length > before, timeoutMs, 'manager.start()');
  }

  /** Calls `manager.stop({ timeoutMs })` in the child; resolves with its report. */
  async stop(timeoutMs: number): Promise<Extract<ChildMessage, { type: 'stopped' }>> {
    const before = this.ofType('stopped').length;
    this.command(`stop ${timeoutMs}`);
    await this.waitFor(
      () => this.ofType('stopped').length > before,
      timeoutMs + 15_000,
      'manager.stop()',
    );
    return this.ofType('stopped')[before]!;
  }

  /** Asks the process to leave and waits until it has. */
  async exit(): Promise<void> {
    if (this.#gone) return;
    this.command('exit');
    await this.exited;
  }

  /**
   * Sends SIGKILL now (synchronously, so it can be called from inside a receiver's callback)
   * and returns the wait for the exit.
   */
  kill(): Promise<unknown> {
    if (!this.#gone && this.killedAt === null) {
      this.killedAt = Date.now();
      this.#child.kill('SIGKILL');
    }
    return this.exited;
  }

  #receive(line: string): void {
    let message: ChildMessage;
    try {
      message = JSON.parse(line) as ChildMessage;
    } catch {
      return;
    }
    this.messages.push(message);
    for (const waiter of this.#waiters.filter((candidate) => candidate.predicate(message))) {
      waiter.resolve(message);
    }
  }

  #next(
    predicate: (message: ChildMessage) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<ChildMessage> {
    return new Promise<ChildMessage>((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        this.#waiters = this.#waiters.filter((candidate) => candidate !== waiter);
      };
      const waiter: Waiter = {
        predicate,
        resolve: (message) => {
          finish();
          resolve(message);
        },
      };
      const fail = (reason: string) => {
        finish();
        reject(
          new Error(
            `${this.spec.label} (pid ${this.pid}): ${what} ${reason}\n--- stderr ---\n${this.#stderr}`,
          ),
        );
      };
      const timer = setTimeout(() => fail(`did not happen within ${timeoutMs} ms`), timeoutMs);
      this.#waiters.push(waiter);
      void this.exited.then(({ code, signal }) => {
        if (!this.#waiters.includes(waiter)) return;
        const failed = this.ofType('failed').at(-1);
        fail(`: process exited (${code ?? signal})${failed ? `: ${failed.message}` : ''}`);
      });
    });
  }
}
