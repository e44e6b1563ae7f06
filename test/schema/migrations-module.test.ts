import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { MIGRATIONS, migrationChecksum } from '../../src/schema/migrations.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('migrations module', () => {
  it('matches the files in migrations/ byte for byte', () => {
    const files = readdirSync(`${root}migrations`)
      .filter((name) => name.endsWith('.sql'))
      .sort();
    expect(MIGRATIONS.map((migration) => `${migration.name}.sql`)).toEqual(files);
    MIGRATIONS.forEach((migration, index) => {
      const bytes = readFileSync(`${root}migrations/${files[index]}`);
      expect(migration.version).toBe(index + 1);
      expect(Buffer.from(migration.sql, 'utf8').equals(bytes)).toBe(true);
      expect(migrationChecksum(migration)).toBe(sha256(bytes));
    });
  });

  it('is what scripts/build-migrations.mjs generates', () => {
    const result = spawnSync(process.execPath, ['scripts/build-migrations.mjs', '--check'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('ships only statements that can run inside a transaction', () => {
    for (const migration of MIGRATIONS) {
      expect(migration.sql).not.toMatch(/\bCONCURRENTLY\b/i);
      expect(migration.sql).not.toMatch(/^\s*(BEGIN|COMMIT|ROLLBACK)\b/im);
    }
  });
});
