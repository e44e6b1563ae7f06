import type { Info, WorkerSettings } from '../contenders/types.js';

/** What bench/run.ts asks one bench/proc.ts child to do (see proc.ts). */
export interface ProcSpec {
  role:
    | 'setup'
    | 'teardown'
    | 'serve'
    | 'fill'
    | 'steady'
    | 'idle'
    | 'enqueue-single'
    | 'enqueue-batch';
  contender: string;
  runId?: string;
  urls?: string[];
  info?: Info;
  settings?: WorkerSettings;
  /** Items per endpoint (fill). */
  counts?: number[];
  /** Total items (enqueue roles). */
  n?: number;
  rate?: number;
  seconds?: number;
  samples?: number;
  callers?: number;
  size?: number;
  controlUrl?: string;
}
