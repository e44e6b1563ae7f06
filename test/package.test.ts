import { existsSync, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

interface PackageJson {
  name: string;
  type: string;
  engines: { node: string };
  sideEffects: boolean;
  files: string[];
  license: string;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
}

const root = new URL('../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as PackageJson;

describe('package shape', () => {
  it('is an ESM package for Node 20.19+ with no side effects at import', () => {
    expect(pkg.name).toBe('node-hookd');
    expect(pkg.type).toBe('module');
    expect(pkg.engines.node).toBe('>=20.19');
    expect(pkg.sideEffects).toBe(false);
    expect(pkg.license).toBe('MIT');
    for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md'])
      expect(existsSync(new URL(file, root))).toBe(true);
  });

  it('exports the main entry, verify and prometheus, each with types first', () => {
    expect(Object.keys(pkg.exports)).toEqual(['.', './verify', './prometheus', './package.json']);
    for (const [subpath, target] of Object.entries(pkg.exports)) {
      if (subpath === './package.json') continue;
      expect(typeof target).toBe('object');
      expect(Object.keys(target as object)).toEqual(['types', 'default']);
      const { types, default: main } = target as { types: string; default: string };
      expect(types.endsWith('.d.ts')).toBe(true);
      expect(main.replace(/\.js$/, '')).toBe(types.replace(/\.d\.ts$/, ''));
      expect(pkg.files.some((file) => main.startsWith(`./${file}`))).toBe(true);
    }
    expect(pkg.files).toContain('migrations');
  });

  it('depends only on the five libraries the design names, the optional ones as optional peers', () => {
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['nanoid', 'pg', 'undici', 'zod']);
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['@opentelemetry/api', 'prom-client']);
    for (const name of Object.keys(pkg.peerDependencies))
      expect(pkg.peerDependenciesMeta[name]?.optional).toBe(true);
  });

  it('keeps node-hookd/verify free of runtime dependencies and of src/', () => {
    const imports: string[] = [];
    for (const file of ['index.ts', 'signature.ts', 'errors.ts', 'headers.ts']) {
      const source = readFileSync(new URL(`verify/${file}`, root), 'utf8');
      // Real import statements only: TSDoc examples mention other packages on purpose.
      for (const match of source.matchAll(/^(?:import|export)\b[^;]*?from '([^']+)'/gm))
        imports.push(match[1]!);
    }
    expect(imports).toContain('node:crypto');
    for (const specifier of imports) expect(specifier).toMatch(/^(node:|\.\/)/);
  });
});
