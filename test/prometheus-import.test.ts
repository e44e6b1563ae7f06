import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Registry, register } from 'prom-client';
import { describe, expect, it } from 'vitest';

// Deliberately no static import of node-hookd/prometheus: these tests are about what loading it
// does.

const root = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

/**
 * Node started like an application that does not have prom-client installed: a resolve hook
 * makes every import of it fail exactly as a missing package does. TypeScript runs through tsx.
 */
async function withoutPromClient(
  script: string,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const hooks = `export async function resolve(specifier, context, next) {
    if (specifier === 'prom-client' || specifier.startsWith('prom-client/')) {
      const error = new Error("Cannot find package 'prom-client'");
      error.code = 'ERR_MODULE_NOT_FOUND';
      throw error;
    }
    return next(specifier, context);
  }`;
  const install = `import { register } from 'node:module';
    register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        `data:text/javascript,${encodeURIComponent(install)}`,
        '--input-type=module',
        '--eval',
        script,
      ],
      { cwd: root, timeout: 15_000 },
    );
    return { ok: true, stdout, stderr };
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    return { ok: false, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' };
  }
}

describe('loading node-hookd/prometheus', () => {
  it('registers no metric until a collector is constructed', async () => {
    expect(register.getMetricsAsArray()).toHaveLength(0);
    const { PrometheusCollector } = await import('node-hookd/prometheus');
    expect(register.getMetricsAsArray()).toHaveLength(0);

    const registry = new Registry();
    new PrometheusCollector({ registry });
    expect(registry.getMetricsAsArray()).toHaveLength(10);
    // A collector on the application's registry leaves the global one alone.
    expect(register.getMetricsAsArray()).toHaveLength(0);
  });

  it('keeps prom-client out of the main entry, which works without it installed', async () => {
    const main = await withoutPromClient(
      `const hookd = await import(${JSON.stringify(`${root}src/index.ts`)});
       const manager = new hookd.Manager({}, new hookd.MockRepository());
       console.log(typeof manager.start);`,
    );
    expect(main).toMatchObject({ ok: true, stdout: 'function\n' });

    // The control: the same setup does hide prom-client from the prometheus entry.
    const prometheus = await withoutPromClient(
      `await import(${JSON.stringify(`${root}prometheus/index.ts`)});`,
    );
    expect(prometheus.ok).toBe(false);
    expect(prometheus.stderr).toContain("Cannot find package 'prom-client'");
  });
});
