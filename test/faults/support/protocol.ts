import type { Config, DeliveryAgentPoolOptions, Topic } from '../../../src/index.js';

/**
 * What a fault-suite manager process is told to run (argv[2], JSON) and what it reports back
 * (one JSON object per stdout line). Shared by `manager-child.ts` and `manager-process.ts`.
 */

/** How a child process runs its `Manager`. */
export interface ChildSpec {
  /** Name used in reports. */
  readonly label: string;
  readonly databaseUrl: string;
  readonly tablePrefix: string;
  /** `application_name` of every connection (pool and LISTEN), to find them in pg_stat_activity. */
  readonly applicationName?: string;
  readonly poolMax?: number;
  readonly config: Partial<Config>;
  readonly agentOptions?: DeliveryAgentPoolOptions;
  /** Topics reported live, one line per event. Every topic is counted either way. */
  readonly forward?: readonly Topic[];
  /** Connect, report `connected`, and call `start()` only on the `start` command. */
  readonly holdStart?: boolean;
}

/** Commands on the child's stdin, one per line. */
export type ChildCommand = 'start' | `stop ${number}` | 'exit';

/** Lines on the child's stdout. */
export type ChildMessage =
  | { readonly type: 'connected'; readonly at: number }
  | { readonly type: 'started'; readonly at: number }
  | {
      readonly type: 'event';
      readonly at: number;
      readonly topic: Topic;
      readonly deliveryId?: string;
      readonly endpoint?: string;
      readonly operation?: string;
      readonly error?: string;
    }
  | { readonly type: 'log'; readonly at: number; readonly level: string; readonly message: string }
  | {
      readonly type: 'stopped';
      readonly at: number;
      /** How long `stop()` took. */
      readonly elapsedMs: number;
      /** Events published so far, by topic. */
      readonly counts: Readonly<Record<string, number>>;
    }
  | { readonly type: 'failed'; readonly at: number; readonly message: string };
