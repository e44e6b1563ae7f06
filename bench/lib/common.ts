/**
 * Helpers shared by every benchmark process: clocks, statistics, CPU accounting from /proc, the
 * payload, and the signed request every contender sends.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

/** Epoch milliseconds with sub-millisecond resolution, comparable across processes of one box. */
export function now(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The database every process uses. */
export function databaseUrl(): string {
  return process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
}

// ── Payload ────────────────────────────────────────────────────────────────────────────────

/**
 * A ~1 KiB JSON event (an invoice with ten lines), the same document for every contender. The
 * enqueue time travels inside it (`enq_ts`, epoch ms): node-hookd sends the stored body as is,
 * so the payload is the only per-delivery place the receiver can read it from.
 */
export function makePayload(enqTs: number, seq = 0): Record<string, unknown> {
  return {
    enq_ts: enqTs,
    type: 'invoice.paid',
    id: `evt_${seq.toString(36).padStart(12, '0')}`,
    created: 1_732_800_000,
    data: PAYLOAD_DATA,
  };
}

const PAYLOAD_DATA = {
  object: {
    id: 'in_0123456789',
    amount: 12_345,
    currency: 'usd',
    customer: 'cus_ABCDEFGHIJ',
    lines: Array.from({ length: 10 }, (_, i) => ({
      sku: `sku_${String(i).padStart(2, '0')}`,
      qty: i,
      price: 1000 + i,
      description: 'Widget, standard edition',
    })),
    metadata: { order: 'ord_000123', region: 'eu-west-1', channel: 'web' },
  },
};

/** Byte length of one payload as sent. */
export const PAYLOAD_BYTES = Buffer.byteLength(JSON.stringify(makePayload(now(), 1)));

// ── Signing (the peers' and the ceiling's job does the same signed POST node-hookd does) ──

/** The signing secret of every contender: a Standard Webhooks `whsec_` secret. */
export const BENCH_SECRET = `whsec_${Buffer.from('node-hookd-bench-secret-32-bytes!').toString('base64')}`;
const STANDARD_KEY = Buffer.from(BENCH_SECRET.slice('whsec_'.length), 'base64');

/**
 * The headers node-hookd puts on a webhook: both signatures (Standard Webhooks and go-hookd),
 * ids, event type, attempt. Written here for the peers and the ceiling; node-hookd uses its own.
 */
export function signedHeaders(
  id: string,
  body: string,
  eventType: string,
  attempt: number,
): Record<string, string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const standard = createHmac('sha256', STANDARD_KEY)
    .update(`${id}.${ts}.`)
    .update(body)
    .digest('base64');
  const goHookd = createHmac('sha256', BENCH_SECRET).update(`${ts}.`).update(body).digest('hex');
  return {
    'content-type': 'application/json',
    'user-agent': 'bench/1',
    'webhook-id': id,
    'webhook-timestamp': ts,
    'webhook-signature': `v1,${standard}`,
    'x-webhook-timestamp': ts,
    'x-webhook-signature': goHookd,
    'x-webhook-delivery-id': id,
    'x-webhook-event-type': eventType,
    'x-webhook-attempt': String(attempt),
  };
}

/** Checks a Standard Webhooks signature (the receiver samples requests with it). */
export function standardSignatureValid(id: string, ts: string, body: Buffer, header: string) {
  const expected = createHmac('sha256', STANDARD_KEY)
    .update(`${id}.${ts}.`)
    .update(body)
    .digest('base64');
  return header.split(' ').some((part) => part === `v1,${expected}`);
}

export function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

// ── Statistics ─────────────────────────────────────────────────────────────────────────────

export interface Percentiles {
  n: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const at = (q: number) =>
    n === 0 ? null : round2(sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    n,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: n === 0 ? null : round2(sorted[n - 1]!),
    mean: n === 0 ? null : round2(sum / n),
  };
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function summarize(values: readonly number[]): Summary | null {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return null;
  const sorted = [...finite].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median: round2(median), min: sorted[0]!, max: sorted.at(-1)!, runs: [...finite] };
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

// ── CPU and memory from /proc (Linux) ──────────────────────────────────────────────────────

const TICKS_PER_SECOND = 100;

/** Whole-box CPU seconds: busy and total, from /proc/stat. */
export function boxCpu(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1);
  const numbers = fields.map(Number);
  const idle = numbers[3]! + numbers[4]!;
  const total = numbers.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** CPU seconds (user + system) of one process, own threads only; NaN once it is gone. */
export function processCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU seconds of every PostgreSQL process, plus what the postmaster collected from backends
 * that already exited.
 */
export function postgresCpu(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (stat.slice(open + 1, close) !== 'postgres') continue;
    const fields = stat.slice(close + 2).split(' ');
    total += Number(fields[11]) + Number(fields[12]);
    // The postmaster (parent not postgres) also carries its reaped children's time.
    total += Number(fields[13]) + Number(fields[14]);
  }
  return total / TICKS_PER_SECOND;
}

/** Read and write system calls a process made so far (from /proc/<pid>/io). */
export function processSyscalls(pid: number): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(io)?.[1]);
    return { reads: field('syscr'), writes: field('syscw') };
  } catch {
    return { reads: Number.NaN, writes: Number.NaN };
  }
}

/**
 * CPU seconds of a process and all its descendants: its own time, the time of children it has
 * reaped, and the time of descendants still running.
 */
export function treeCpu(rootPid: number): number {
  const parents = new Map<number, number>();
  const times = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      parents.set(pid, Number(fields[1]));
      const own = Number(fields[11]) + Number(fields[12]);
      const reaped = Number(fields[13]) + Number(fields[14]);
      times.set(pid, pid === rootPid ? own + reaped : own);
    } catch {
      continue;
    }
  }
  let total = 0;
  for (const [pid, time] of times) {
    let current: number | undefined = pid;
    for (let depth = 0; current !== undefined && current > 1 && depth < 64; depth++) {
      if (current === rootPid) {
        total += time;
        break;
      }
      current = parents.get(current);
    }
  }
  return total / TICKS_PER_SECOND;
}

/**
 * Share of the box (0–100) that processes outside the benchmark used between two readings of
 * {@link noiseReading}: other people's builds and tests on a shared machine.
 */
export function noiseReading(): { box: { busy: number; total: number }; ours: number } {
  return { box: boxCpu(), ours: treeCpu(process.pid) + postgresCpu() };
}

export function noisePercent(
  before: ReturnType<typeof noiseReading>,
  after: ReturnType<typeof noiseReading>,
): number {
  const busy = after.box.busy - before.box.busy;
  const capacity = Math.max(1e-9, after.box.total - before.box.total);
  return round2((100 * Math.max(0, busy - (after.ours - before.ours))) / capacity);
}

/** Current and peak (high-water mark) resident set size of a process, in MB. */
export function processMemory(pid: number): { rssMb: number; peakMb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1]);
    return { rssMb: round2(kb('VmRSS') / 1024), peakMb: round2(kb('VmHWM') / 1024) };
  } catch {
    return { rssMb: Number.NaN, peakMb: Number.NaN };
  }
}

/** A snapshot of CPU counters of the box, PostgreSQL and named processes. */
export interface CpuSnapshot {
  box: { busy: number; total: number };
  postgres: number;
  processes: Record<string, number>;
}

export function cpuSnapshot(pids: Record<string, number>): CpuSnapshot {
  const processes: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) processes[name] = processCpu(pid);
  return { box: boxCpu(), postgres: postgresCpu(), processes };
}

/** CPU µs per delivery per process between two snapshots, and how busy the box was. */
export function cpuReport(before: CpuSnapshot, after: CpuSnapshot, deliveries: number) {
  const perDelivery = (seconds: number) =>
    deliveries > 0 ? Math.round((seconds / deliveries) * 1e6) : null;
  const busy = after.box.busy - before.box.busy;
  const us: Record<string, number | null> = {};
  let named = 0;
  for (const [name, start] of Object.entries(before.processes)) {
    const used = (after.processes[name] ?? Number.NaN) - start;
    us[name] = Number.isFinite(used) ? perDelivery(used) : null;
    if (Number.isFinite(used)) named += used;
  }
  const pg = after.postgres - before.postgres;
  us['postgres'] = perDelivery(pg);
  us['rest'] = perDelivery(Math.max(0, busy - named - pg));
  us['total_box'] = perDelivery(busy);
  return {
    box_busy_pct: round2((100 * busy) / Math.max(1e-9, after.box.total - before.box.total)),
    cpu_us_per_delivery: us,
  };
}
