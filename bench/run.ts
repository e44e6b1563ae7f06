/**
 * `npm run bench`: node-hookd against pg-boss 10 and graphile-worker 0.16 (and a ceiling row),
 * same receiver, same PostgreSQL, same payload, interleaved runs, one table.
 *
 *   npm run bench -- [--runs 3] [--scenarios drain,steady,idle,enqueue,memory,isolation]
 *                    [--contenders node-hookd,graphile-worker,pg-boss,ceiling]
 *                    [--steady-rate N] [--steady-seconds 30] [--drain-n 20000] [--quick]
 *
 * Every run gets fresh tables (a new prefix or schema, dropped afterwards). Results go to
 * bench/results/<timestamp>.json; see bench/README.md for the method.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import type { Contender, Info, WorkerSettings } from './contenders/types.js';
import { succeededPerEndpoint } from './contenders/hookd.js';
import {
  PAYLOAD_BYTES,
  cpuReport,
  cpuSnapshot,
  databaseUrl,
  now,
  processCpu,
  processMemory,
  processSyscalls,
  noisePercent,
  noiseReading,
  round2,
  sleep,
  summarize,
  type Percentiles,
  type Summary,
} from './lib/common.js';
import { contenderByName } from './contenders/index.js';
import type { ProcSpec } from './lib/spec.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The checkout: `npm run bench` runs from it (the compiled bench lives under node_modules/.cache). */
const root = process.cwd();
/** `.ts` when run through tsx, `.js` when compiled (`npm run bench`). */
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

// ── Arguments ──────────────────────────────────────────────────────────────────────────────

const argv = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const index = argv.indexOf(`--${name}`);
  return index >= 0 && argv[index + 1] !== undefined ? argv[index + 1]! : fallback;
}
const quick = argv.includes('--quick');
const RUNS = Number(arg('runs', quick ? '1' : '3'));
const SCENARIOS = arg('scenarios', 'drain,steady,idle,enqueue,memory,isolation').split(',');
const CONTENDERS = arg('contenders', 'node-hookd,graphile-worker,pg-boss,ceiling').split(',');
const DRAIN_N = Number(arg('drain-n', quick ? '5000' : '20000'));
const STEADY_SECONDS = Number(arg('steady-seconds', quick ? '10' : '30'));
const STEADY_RATE_ARG = arg('steady-rate', 'auto');
/**
 * The steady offered rate, as a share of node-hookd's drain rate: steady also pays for the
 * producer's single calls (its process, the inserts and their wake-ups) on the same two cores,
 * so node-hookd sustains less than it drains; at 0.6 it ran at the edge of saturation.
 */
const STEADY_FRACTION = 0.45;
const IDLE_SAMPLES = Number(arg('idle-samples', quick ? '50' : '200'));
const IDLE_SAMPLES_POLLING = Number(arg('idle-samples-polling', quick ? '10' : '40'));
const MEMORY_N = Number(arg('memory-n', quick ? '20000' : '100000'));
const ENQUEUE_SINGLE_N = Number(arg('enqueue-single-n', quick ? '3000' : '10000'));
const ENQUEUE_BATCH_N = Number(arg('enqueue-batch-n', quick ? '10000' : '50000'));
const ISOLATION_PER_ENDPOINT = Number(arg('isolation-n', quick ? '500' : '2000'));
const PROFILE = argv.includes('--cpu-prof');
/**
 * A figure measured while processes outside the benchmark used more than this share of the box
 * (other builds and tests on a shared machine) is measured again, up to NOISE_RETRIES times; the
 * quietest try is kept and the others are recorded as discarded.
 */
const MAX_NOISE_PCT = Number(arg('max-noise', '10'));
const NOISE_RETRIES = Number(arg('noise-retries', '2'));

/** The delivering side's settings, fixed for every scenario. */
const SETTINGS: Record<string, WorkerSettings> = {
  'node-hookd': {
    workerCount: Number(arg('hookd-workers', '200')),
    maxBatchSize: Number(arg('hookd-batch', '2')),
    connections: Number(arg('hookd-connections', '32')),
    poolMax: 10,
  },
  'graphile-worker': { concurrency: Number(arg('gw-concurrency', '10')) },
  'pg-boss': { workers: 10, batchSize: 100, poll: 0.5 },
  ceiling: { loops: 4, claim: 100, connections: 64 },
};

const CONTROL_PORT = 18_080;
const HOOK_PORTS = Array.from({ length: 10 }, (_, i) => 18_081 + i);
const SLOW_PORT = HOOK_PORTS[9]!;
const SLOW_DELAY_MS = 1_500;
const urlOf = (port: number) => `http://127.0.0.1:${port}/hooks/${port}`;
const controlUrl = `http://127.0.0.1:${CONTROL_PORT}`;

// ── Child processes ────────────────────────────────────────────────────────────────────────

interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  next(type: string): Promise<Record<string, unknown>>;
  send(type: string): void;
  exited: Promise<number | null>;
}

function spawnChild(script: string, args: string[], profile = false): Child {
  const execArgv = EXT === '.ts' ? ['--import', 'tsx'] : [];
  if (profile) {
    execArgv.push('--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles')}`);
    // Extra flags for the profiled process only, e.g. BENCH_PROFILE_FLAGS=--heap-prof.
    const extra = process.env['BENCH_PROFILE_FLAGS'];
    if (extra) execArgv.push(...extra.split(' ').filter(Boolean));
  }
  const child = fork(join(here, script + EXT), args, {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const inbox: Record<string, unknown>[] = [];
  let waiting: { type: string; resolve: (m: Record<string, unknown>) => void } | null = null;
  child.on('message', (message: Record<string, unknown>) => {
    if (waiting && message['type'] === waiting.type) {
      const { resolve } = waiting;
      waiting = null;
      resolve(message);
    } else inbox.push(message);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    pid: child.pid!,
    exited,
    next(type) {
      const index = inbox.findIndex((message) => message['type'] === type);
      if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0]!);
      return Promise.race([
        new Promise<Record<string, unknown>>((resolve) => (waiting = { type, resolve })),
        exited.then((code) => {
          throw new Error(`${script} ${args[0]?.slice(0, 80)} exited (${code}) before ${type}`);
        }),
      ]);
    },
    send(type) {
      child.send({ type });
    },
  };
}

async function runProc(spec: ProcSpec): Promise<Record<string, unknown>> {
  const child = spawnChild('proc', [JSON.stringify(spec)]);
  if (spec.role !== 'setup' && spec.role !== 'teardown') {
    await child.next('ready');
    child.send('go');
  }
  const done = await child.next('done');
  await child.exited;
  return done;
}

async function startServer(info: Info, profile = false) {
  const spec: ProcSpec = {
    role: 'serve',
    contender: info.contender,
    info,
    settings: SETTINGS[info.contender]!,
  };
  const child = spawnChild('proc', [JSON.stringify(spec)], profile);
  await child.next('ready');
  return {
    pid: child.pid,
    async go() {
      child.send('go');
      await child.next('started');
    },
    async stop() {
      child.send('stop');
      await child.next('done');
      await child.exited;
    },
  };
}

async function receiverCount(): Promise<number> {
  const response = await fetch(`${controlUrl}/count`);
  return ((await response.json()) as { count: number }).count;
}

/**
 * Waits until the receiver has seen `expected` requests (cheap to poll), then until the
 * contender has recorded everything (a database query, polled only at the very end).
 */
async function waitDrained(
  c: Contender,
  info: Info,
  expected: number,
  timeoutMs: number,
): Promise<{ finished: boolean; pending: number }> {
  const deadline = now() + timeoutMs;
  await waitUntil(async () => (await receiverCount()) >= expected, timeoutMs, 10);
  let pending = await c.pending(info);
  while (pending > 0 && now() < deadline) {
    await sleep(10);
    pending = await c.pending(info);
  }
  return { finished: pending === 0, pending };
}

async function receiverStats(reset = false, since = 0) {
  const response = await fetch(`${controlUrl}/${reset ? `reset?since=${since}` : 'stats'}`);
  return (await response.json()) as {
    pid: number;
    count: number;
    unique: number;
    duplicates: number;
    signaturesChecked: number;
    signaturesBad: number;
    perPort: Record<string, number>;
    latencyMs: Percentiles;
  };
}

let runCounter = 0;
async function setup(contender: string, urls: string[]): Promise<Info> {
  runCounter += 1;
  const runId = `${Date.now().toString(36)}${runCounter}`;
  const done = await runProc({ role: 'setup', contender, runId, urls });
  return done['info'] as Info;
}

async function teardown(info: Info): Promise<void> {
  await runProc({ role: 'teardown', contender: info.contender, info });
}

async function waitUntil(
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 25,
): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return false;
}

// ── Scenarios ──────────────────────────────────────────────────────────────────────────────

type Result = Record<string, unknown>;
let receiverPid = 0;

async function drain(contender: string, n: number): Promise<Result> {
  const c = await contenderByName(contender);
  const info = await setup(contender, [urlOf(HOOK_PORTS[0]!)]);
  await runProc({ role: 'fill', contender, info, counts: [n] });
  await c.analyze(info);
  await receiverStats(true);
  const server = await startServer(info, PROFILE);
  const before = cpuSnapshot({ worker: server.pid, receiver: receiverPid });
  const syscallsBefore = processSyscalls(server.pid);
  const started = now();
  await server.go();
  const { finished, pending } = await waitDrained(c, info, n, 300_000);
  const seconds = (now() - started) / 1000;
  const after = cpuSnapshot({ worker: server.pid, receiver: receiverPid });
  const syscallsAfter = processSyscalls(server.pid);
  const memory = processMemory(server.pid);
  await server.stop();
  const received = await receiverStats();
  const succeeded = await c.succeeded(info);
  await teardown(info);
  const done = n - pending;
  return {
    n,
    finished,
    seconds: round2(seconds),
    rate: Math.round(done / seconds),
    succeeded,
    received: received.count,
    duplicates: received.duplicates,
    signatures: `${received.signaturesChecked - received.signaturesBad}/${received.signaturesChecked} valid`,
    peakRssMb: memory.peakMb,
    workerSyscallsPerDelivery: {
      reads: round2((syscallsAfter.reads - syscallsBefore.reads) / done),
      writes: round2((syscallsAfter.writes - syscallsBefore.writes) / done),
    },
    ...cpuReport(before, after, done),
  };
}

/** Seconds the steady producer runs before the measured window opens (JIT, pools, caches). */
const STEADY_WARMUP_SECONDS = quick ? 2 : 5;

async function steady(contender: string, rate: number, seconds: number): Promise<Result> {
  const c = await contenderByName(contender);
  const info = await setup(contender, [urlOf(HOOK_PORTS[0]!)]);
  const server = await startServer(info);
  await server.go();
  await sleep(500);
  const producer = spawnChild('proc', [
    JSON.stringify({
      role: 'steady',
      contender,
      info,
      rate,
      seconds: seconds + STEADY_WARMUP_SECONDS,
    } satisfies ProcSpec),
  ]);
  await producer.next('ready');
  producer.send('go');
  await sleep(STEADY_WARMUP_SECONDS * 1000);
  // The measured window: deliveries received from now on, latency of those enqueued from now on.
  const windowStart = now();
  await receiverStats(true, windowStart);
  const before = cpuSnapshot({ worker: server.pid, receiver: receiverPid, producer: producer.pid });
  const produced = await producer.next('done');
  const producerCpu = processCpu(producer.pid);
  const windowSeconds = (now() - windowStart) / 1000;
  const atWindowEnd = await receiverStats();
  const backlog = await c.pending(info);
  const enqueued = Number(produced['enqueued']);
  let drainedAfter: number | null = null;
  const drainStart = now();
  if ((await waitDrained(c, info, 0, 30_000)).finished) {
    drainedAfter = round2((now() - drainStart) / 1000);
  }
  const received = await receiverStats();
  const after = cpuSnapshot({ worker: server.pid, receiver: receiverPid });
  after.processes['producer'] = producerCpu;
  await producer.exited;
  await server.stop();
  await teardown(info);
  return {
    offeredRate: rate,
    seconds,
    warmupSeconds: STEADY_WARMUP_SECONDS,
    enqueued,
    achievedEnqueueRate: produced['achievedEnqueueRate'],
    enqueueCallMs: produced['callMs'],
    rate: Math.round(atWindowEnd.count / windowSeconds),
    backlogAtWindowEnd: backlog,
    keptUp: backlog <= rate * 0.5 && Number(produced['achievedEnqueueRate']) >= rate * 0.95,
    drainedAfterSeconds: drainedAfter,
    received: received.count,
    duplicates: received.duplicates,
    latencyMs: received.latencyMs,
    ...cpuReport(before, after, received.count),
  };
}

async function idle(contender: string, samples: number): Promise<Result> {
  const info = await setup(contender, [urlOf(HOOK_PORTS[0]!)]);
  const server = await startServer(info);
  await server.go();
  await sleep(1_000);
  await receiverStats(true);
  await runProc({ role: 'idle', contender, info, samples, controlUrl });
  const received = await receiverStats();
  await server.stop();
  await teardown(info);
  return { samples, latencyMs: received.latencyMs, duplicates: received.duplicates };
}

async function enqueue(contender: string): Promise<Result> {
  const urls = [urlOf(HOOK_PORTS[0]!)];
  let info = await setup(contender, urls);
  const single = await runProc({
    role: 'enqueue-single',
    contender,
    info,
    n: ENQUEUE_SINGLE_N,
    callers: 32,
  });
  await teardown(info);
  info = await setup(contender, urls);
  const batch = await runProc({
    role: 'enqueue-batch',
    contender,
    info,
    n: ENQUEUE_BATCH_N,
    callers: 1,
  });
  await teardown(info);
  info = await setup(contender, urls);
  const batch4 = await runProc({
    role: 'enqueue-batch',
    contender,
    info,
    n: ENQUEUE_BATCH_N,
    callers: 4,
  });
  await teardown(info);
  return {
    singleRate: single['rowsPerSecond'],
    batchRate: batch['rowsPerSecond'],
    batch4Rate: batch4['rowsPerSecond'],
    batchSize: batch['size'],
  };
}

async function memory(contender: string, n: number): Promise<Result> {
  const c = await contenderByName(contender);
  const info = await setup(contender, [urlOf(HOOK_PORTS[0]!)]);
  const server = await startServer(info);
  const baseline = processMemory(server.pid);
  await runProc({ role: 'fill', contender, info, counts: [n] });
  await c.analyze(info);
  await receiverStats(true);
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(processMemory(server.pid).rssMb), 100);
  const started = now();
  await server.go();
  const { finished } = await waitDrained(c, info, n, 600_000);
  clearInterval(sampler);
  const seconds = (now() - started) / 1000;
  const end = processMemory(server.pid);
  await server.stop();
  await teardown(info);
  return {
    pending: n,
    finished,
    rate: Math.round(n / seconds),
    baselineRssMb: baseline.rssMb,
    peakRssMb: end.peakMb,
    endRssMb: end.rssMb,
    // RSS over the first and the last tenth of the drain: flat when nothing grows with backlog.
    firstTenthMaxMb: Math.max(...samples.slice(0, Math.max(1, samples.length / 10))),
    lastTenthMaxMb: Math.max(...samples.slice(-Math.max(1, Math.floor(samples.length / 10)))),
  };
}

async function isolation(slow: boolean): Promise<Result> {
  const contender = 'node-hookd';
  const healthy = HOOK_PORTS.slice(0, 9);
  const urls = (slow ? [...healthy, SLOW_PORT] : healthy).map(urlOf);
  const info = await setup(contender, urls);
  const counts = urls.map(() => ISOLATION_PER_ENDPOINT);
  await runProc({ role: 'fill', contender, info, counts });
  await (await contenderByName(contender)).analyze(info);
  await receiverStats(true);
  const previous = SETTINGS[contender]!;
  SETTINGS[contender] = { ...previous, deliveryTimeoutMs: 1_000, stopTimeoutMs: 2_000 };
  const server = await startServer(info);
  SETTINGS[contender] = previous;
  const target = healthy.length * ISOLATION_PER_ENDPOINT;
  const started = now();
  await server.go();
  let done = 0;
  await waitUntil(
    async () => {
      const per = await succeededPerEndpoint(info);
      done = per.slice(0, healthy.length).reduce((a, b) => a + b, 0);
      return done >= target;
    },
    300_000,
    50,
  );
  const seconds = (now() - started) / 1000;
  const received = await receiverStats();
  await server.stop();
  await teardown(info);
  return {
    slowEndpoint: slow,
    healthyDeliveries: done,
    seconds: round2(seconds),
    rate: Math.round(done / seconds),
    slowRequests: received.perPort[String(SLOW_PORT)] ?? 0,
  };
}

// ── Environment record ─────────────────────────────────────────────────────────────────────

async function machine(): Promise<Record<string, unknown>> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  const version = (await client.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
  const settings = await client.query<{ name: string; setting: string; unit: string | null }>(
    `SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)`,
    [
      [
        'shared_buffers',
        'synchronous_commit',
        'fsync',
        'wal_sync_method',
        'max_wal_size',
        'max_connections',
        'work_mem',
        'checkpoint_timeout',
        'autovacuum',
      ],
    ],
  );
  await client.end();
  const pkg = (name: string) =>
    (
      JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: root }).toString();
    if (dirty.trim() !== '') commit += '+uncommitted';
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    ramGb: round2(totalmem() / 2 ** 30),
    node: process.version,
    postgres: version,
    postgresSettings: Object.fromEntries(
      settings.rows.map((row) => [row.name, `${row.setting}${row.unit ? ` ${row.unit}` : ''}`]),
    ),
    packages: {
      pg: pkg('pg'),
      undici: pkg('undici'),
      'pg-boss': pkg('pg-boss'),
      'graphile-worker': pkg('graphile-worker'),
    },
    commit,
    payloadBytes: PAYLOAD_BYTES,
  };
}

// ── Report ─────────────────────────────────────────────────────────────────────────────────

type Runs = Record<string, Record<string, Result[]>>;

const fmt = (value: number | null | undefined, digits = 0) =>
  value === null || value === undefined || !Number.isFinite(value)
    ? '–'
    : value.toLocaleString('en-US', {
        maximumFractionDigits: digits,
        minimumFractionDigits: digits,
      });

function cell(summary: Summary | null, digits = 0): string {
  if (!summary) return '–';
  return summary.runs.length > 1
    ? `${fmt(summary.median, digits)} (${fmt(summary.min, digits)}–${fmt(summary.max, digits)})`
    : fmt(summary.median, digits);
}

function metric(results: Result[] | undefined, pick: (r: Result) => unknown): Summary | null {
  if (!results || results.length === 0) return null;
  return summarize(results.map((r) => Number(pick(r))));
}

function ratio(a: Summary | null, b: Summary | null, higherIsBetter: boolean): string {
  if (!a || !b || a.median === 0 || b.median === 0) return '–';
  const value = higherIsBetter ? a.median / b.median : b.median / a.median;
  const paired = a.runs
    .map((x, i) =>
      b.runs[i] === undefined ? Number.NaN : higherIsBetter ? x / b.runs[i] : b.runs[i] / x,
    )
    .filter(Number.isFinite);
  const range =
    paired.length > 1 ? ` (${fmt(Math.min(...paired), 2)}–${fmt(Math.max(...paired), 2)})` : '';
  return `${fmt(value, 2)}×${range}`;
}

interface Row {
  label: string;
  pick: (r: Result) => unknown;
  scenario: string;
  digits?: number;
  higherIsBetter: boolean;
}

function table(runs: Runs, steadyRate: number): { text: string; rows: Record<string, unknown>[] } {
  const rows: Row[] = [
    {
      scenario: 'drain',
      label: `drain ${DRAIN_N.toLocaleString('en-US')}, deliveries/s`,
      pick: (r) => r['rate'],
      higherIsBetter: true,
    },
    {
      scenario: 'steady',
      label: `steady @ ${steadyRate.toLocaleString('en-US')}/s offered, delivered/s`,
      pick: (r) => r['rate'],
      higherIsBetter: true,
    },
    {
      scenario: 'steady',
      label: 'steady enqueue→receipt p50, ms',
      pick: (r) => (r['latencyMs'] as Percentiles).p50,
      digits: 1,
      higherIsBetter: false,
    },
    {
      scenario: 'steady',
      label: 'steady enqueue→receipt p95, ms',
      pick: (r) => (r['latencyMs'] as Percentiles).p95,
      digits: 1,
      higherIsBetter: false,
    },
    {
      scenario: 'steady',
      label: 'steady enqueue→receipt p99, ms',
      pick: (r) => (r['latencyMs'] as Percentiles).p99,
      digits: 1,
      higherIsBetter: false,
    },
    {
      scenario: 'idle',
      label: 'idle enqueue→receipt p50, ms',
      pick: (r) => (r['latencyMs'] as Percentiles).p50,
      digits: 1,
      higherIsBetter: false,
    },
    {
      scenario: 'idle',
      label: 'idle enqueue→receipt p99, ms',
      pick: (r) => (r['latencyMs'] as Percentiles).p99,
      digits: 1,
      higherIsBetter: false,
    },
    {
      scenario: 'enqueue',
      label: 'enqueue single calls (32 callers), rows/s',
      pick: (r) => r['singleRate'],
      higherIsBetter: true,
    },
    {
      scenario: 'enqueue',
      label: 'enqueue batch API (1 caller), rows/s',
      pick: (r) => r['batchRate'],
      higherIsBetter: true,
    },
    {
      scenario: 'enqueue',
      label: 'enqueue batch API (4 callers), rows/s',
      pick: (r) => r['batch4Rate'],
      higherIsBetter: true,
    },
    {
      scenario: 'drain',
      label: 'drain CPU µs/delivery: worker process',
      pick: (r) => (r['cpu_us_per_delivery'] as Record<string, number>)['worker'],
      higherIsBetter: false,
    },
    {
      scenario: 'drain',
      label: 'drain CPU µs/delivery: PostgreSQL',
      pick: (r) => (r['cpu_us_per_delivery'] as Record<string, number>)['postgres'],
      higherIsBetter: false,
    },
    {
      scenario: 'drain',
      label: 'drain CPU µs/delivery: receiver',
      pick: (r) => (r['cpu_us_per_delivery'] as Record<string, number>)['receiver'],
      higherIsBetter: false,
    },
    {
      scenario: 'drain',
      label: 'drain CPU µs/delivery: whole box',
      pick: (r) => (r['cpu_us_per_delivery'] as Record<string, number>)['total_box'],
      higherIsBetter: false,
    },
    {
      scenario: 'drain',
      label: 'drain peak RSS of the worker process, MB',
      pick: (r) => r['peakRssMb'],
      higherIsBetter: false,
    },
  ];
  const peers = CONTENDERS.filter((name) => name !== 'node-hookd');
  const header = ['', ...CONTENDERS, ...peers.map((peer) => `node-hookd vs ${peer}`)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  const json: Record<string, unknown>[] = [];
  for (const row of rows) {
    if (!runs[row.scenario]) continue;
    const summaries = CONTENDERS.map((name) => metric(runs[row.scenario]![name], row.pick));
    const ours = summaries[CONTENDERS.indexOf('node-hookd')] ?? null;
    const ratios = peers.map((peer) =>
      ratio(ours, summaries[CONTENDERS.indexOf(peer)] ?? null, row.higherIsBetter),
    );
    lines.push(
      `| ${[row.label, ...summaries.map((s) => cell(s, row.digits)), ...ratios].join(' | ')} |`,
    );
    json.push({
      metric: row.label,
      ...Object.fromEntries(CONTENDERS.map((n, i) => [n, summaries[i]])),
      ratios: Object.fromEntries(peers.map((p, i) => [p, ratios[i]])),
    });
  }
  const extra: string[] = [];
  const memoryRuns = runs['memory']?.['node-hookd'];
  if (memoryRuns) {
    const peak = metric(memoryRuns, (r) => r['peakRssMb']);
    const first = metric(memoryRuns, (r) => r['firstTenthMaxMb']);
    const last = metric(memoryRuns, (r) => r['lastTenthMaxMb']);
    const rate = metric(memoryRuns, (r) => r['rate']);
    extra.push(
      `| memory: node-hookd peak RSS draining ${MEMORY_N.toLocaleString('en-US')} pending, MB | ${cell(peak, 1)} | first / last tenth of the drain: ${cell(first, 1)} / ${cell(last, 1)} MB; ${cell(rate)} deliveries/s |`,
    );
  }
  const isolationRuns = runs['isolation'];
  if (isolationRuns?.['slow'] && isolationRuns['none']) {
    const slow = metric(isolationRuns['slow'], (r) => r['rate']);
    const none = metric(isolationRuns['none'], (r) => r['rate']);
    extra.push(
      `| isolation: 9 healthy endpoints, deliveries/s with / without a 10th endpoint that times out | ${cell(slow)} / ${cell(none)} | ${ratio(slow, none, true)} of the undisturbed rate |`,
    );
  }
  if (extra.length > 0)
    lines.push('', '| node-hookd only | value | note |', '|---|---|---|', ...extra);
  const noise = Object.values(runs)
    .flatMap((byKey) => Object.values(byKey).flat())
    .map((result) => Number(result['noisePct']))
    .filter(Number.isFinite);
  if (noise.length > 0) {
    const sorted = [...noise].sort((a, b) => a - b);
    lines.push(
      '',
      `Other processes' share of the box during the kept runs: median ${fmt(sorted[sorted.length >> 1], 1)} %, max ${fmt(sorted.at(-1), 1)} %.`,
    );
  }
  return { text: lines.join('\n'), rows: json };
}

// ── Main ───────────────────────────────────────────────────────────────────────────────────

async function main(): Promise<void> {
  const receiver = spawnChild('receiver', [
    String(CONTROL_PORT),
    HOOK_PORTS.join(','),
    `${SLOW_PORT}:${SLOW_DELAY_MS}`,
  ]);
  await receiver.next('ready');
  receiverPid = receiver.pid;
  const started = new Date();
  const env = await machine();
  const runs: Runs = {};
  const record = (scenario: string, key: string, result: Result) => {
    runs[scenario] ??= {};
    (runs[scenario][key] ??= []).push(result);
    console.error(`  ${scenario} ${key}: ${JSON.stringify(result)}`);
  };
  const discarded: Array<{ scenario: string; key: string; result: Result }> = [];
  /** Runs one measurement, again while the box was too busy with other work (see MAX_NOISE_PCT). */
  const measure = async (scenario: string, key: string, run: () => Promise<Result>) => {
    let best: Result | null = null;
    for (let attempt = 0; attempt <= NOISE_RETRIES; attempt++) {
      const before = noiseReading();
      const result = await run();
      result['noisePct'] = noisePercent(before, noiseReading());
      if (best === null || Number(result['noisePct']) < Number(best['noisePct'])) {
        if (best) discarded.push({ scenario, key, result: best });
        best = result;
      } else {
        discarded.push({ scenario, key, result });
      }
      if (Number(best['noisePct']) <= MAX_NOISE_PCT || attempt === NOISE_RETRIES) break;
      console.error(
        `  (${scenario} ${key}: other processes used ${String(result['noisePct'])}% of the box; measuring again)`,
      );
    }
    record(scenario, key, best!);
  };
  // Rotate the order of contenders between repetitions, so none always runs first or last.
  const order = (rep: number) =>
    CONTENDERS.map((_, i) => CONTENDERS[(i + rep) % CONTENDERS.length]!);
  let steadyRate = STEADY_RATE_ARG === 'auto' ? 0 : Number(STEADY_RATE_ARG);
  try {
    for (const scenario of SCENARIOS) {
      console.error(`# ${scenario}`);
      for (let rep = 0; rep < RUNS; rep++) {
        if (scenario === 'memory') {
          if (CONTENDERS.includes('node-hookd'))
            await measure(scenario, 'node-hookd', () => memory('node-hookd', MEMORY_N));
          continue;
        }
        if (scenario === 'isolation') {
          // Alternate the two variants so drift on the box hits both alike.
          const first = rep % 2 === 0;
          await measure(scenario, first ? 'slow' : 'none', () => isolation(first));
          await measure(scenario, first ? 'none' : 'slow', () => isolation(!first));
          continue;
        }
        if (scenario === 'steady' && steadyRate === 0) {
          const ours = metric(runs['drain']?.['node-hookd'], (r) => r['rate']);
          steadyRate = ours ? Math.floor((ours.median * STEADY_FRACTION) / 250) * 250 : 3_000;
          console.error(`  steady offered rate: ${steadyRate}/s`);
        }
        for (const contender of order(rep)) {
          if (scenario === 'enqueue' && contender === 'ceiling') continue;
          await measure(scenario, contender, () => {
            switch (scenario) {
              case 'drain':
                return drain(contender, DRAIN_N);
              case 'steady':
                return steady(contender, steadyRate, STEADY_SECONDS);
              case 'idle':
                return idle(
                  contender,
                  contender === 'pg-boss' ? IDLE_SAMPLES_POLLING : IDLE_SAMPLES,
                );
              case 'enqueue':
                return enqueue(contender);
              default:
                throw new Error(`unknown scenario ${scenario}`);
            }
          });
        }
      }
    }
  } finally {
    receiver.process.kill();
  }
  const { text, rows } = table(runs, steadyRate);
  const report = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    runsPerFigure: RUNS,
    machine: env,
    parameters: {
      drainN: DRAIN_N,
      steadyRate,
      steadyRateRule:
        STEADY_RATE_ARG === 'auto'
          ? `${STEADY_FRACTION} × node-hookd's median drain rate of this run, rounded down to 250/s`
          : 'given on the command line',
      steadySeconds: STEADY_SECONDS,
      idleSamples: IDLE_SAMPLES,
      idleSamplesPolling: IDLE_SAMPLES_POLLING,
      memoryPending: MEMORY_N,
      enqueueSingleN: ENQUEUE_SINGLE_N,
      enqueueBatchN: ENQUEUE_BATCH_N,
      isolationPerEndpoint: ISOLATION_PER_ENDPOINT,
      isolationSlowDelayMs: SLOW_DELAY_MS,
      isolationDeliveryTimeoutMs: 1_000,
      maxNoisePct: MAX_NOISE_PCT,
      noiseRetries: NOISE_RETRIES,
      settings: Object.fromEntries(
        await Promise.all(
          CONTENDERS.map(async (name) => [
            name,
            (await contenderByName(name)).describe(SETTINGS[name]!),
          ]),
        ),
      ),
    },
    table: rows,
    runs,
    discardedAsNoisy: discarded,
  };
  mkdirSync(join(root, 'bench', 'results'), { recursive: true });
  const file = join(
    root,
    'bench',
    'results',
    `${started.toISOString().replace(/[:.]/g, '-')}.json`,
  );
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  const facts = `${String(env['cpu'])}, ${String(env['cores'])} cores, ${String(env['ramGb'])} GiB RAM, Node ${String(env['node'])}, ${String(env['postgres']).split(' on ')[0]}`;
  console.log(`\n${facts}\n${report.command}; median (min–max) of ${RUNS} runs\n`);
  console.log(text);
  console.log(`\nresults: ${file}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
