import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { HookdError } from '../../src/errors.js';
import { MIGRATIONS, renderMigration } from '../../src/schema/migrations.js';
import {
  MAX_PREFIX_LENGTH,
  newSchemaConfig,
  shortenIdentifier,
  validatePrefix,
} from '../../src/schema/schema-config.js';
import { SCHEMA_LOCK_CLASS_ID, schemaLockKey } from '../../src/schema/schema-manager.js';

const RESERVED = [
  'select',
  'insert',
  'update',
  'delete',
  'drop',
  'create',
  'alter',
  'table',
  'schema',
  'index',
  'trigger',
  'function',
  'view',
  'database',
  'grant',
  'revoke',
  'commit',
  'rollback',
  'transaction',
];

function prefixError(prefix: unknown): HookdError {
  try {
    validatePrefix(prefix);
  } catch (error) {
    expect(error).toBeInstanceOf(HookdError);
    expect((error as HookdError).code).toBe('HOOKD_ERR_INVALID_PREFIX');
    expect((error as HookdError).field).toBe('tablePrefix');
    return error as HookdError;
  }
  throw new Error(`prefix ${String(prefix)} was accepted`);
}

describe('table prefix rules', () => {
  it('requires a prefix, with a message that says how to give one', () => {
    for (const missing of [undefined, null, '']) {
      expect(prefixError(missing).message).toMatch(/^tablePrefix is required/);
    }
  });

  it('accepts lowercase identifiers of up to 32 bytes', () => {
    for (const ok of ['a', 'acme', 'billing_v2', 'a1_b2', 'x'.repeat(MAX_PREFIX_LENGTH)]) {
      expect(newSchemaConfig(ok).prefix).toBe(ok);
    }
  });

  it('refuses long, malformed and reserved prefixes', () => {
    expect(prefixError('x'.repeat(33)).message).toMatch(/33 bytes.*32 bytes/);
    for (const bad of ['Acme', '1acme', '_acme', 'ac-me', 'ac me', 'acmé', 'acme;drop']) {
      expect(prefixError(bad).message).toMatch(/must start with a lowercase letter/);
    }
    for (const word of RESERVED) expect(prefixError(word).message).toMatch(/reserved SQL word/);
    expect(newSchemaConfig('selection').prefix).toBe('selection');
  });
});

describe('identifier names', () => {
  it('leaves names of up to 63 bytes alone and shortens longer ones with a hash', () => {
    expect(shortenIdentifier('a'.repeat(63))).toBe('a'.repeat(63));
    const long = `${'b'.repeat(60)}_suffix`;
    const short = shortenIdentifier(long);
    const hash = createHash('sha256').update(long).digest('hex').slice(0, 8);
    expect(short).toBe(`${long.slice(0, 54)}_${hash}`);
    expect(Buffer.byteLength(short)).toBe(63);
    // Names that share their first 54 bytes stay apart.
    expect(shortenIdentifier(`${long}_one`)).not.toBe(shortenIdentifier(`${long}_two`));
  });

  it('derives table and object names from the prefix', () => {
    const config = newSchemaConfig('acme');
    expect(config.tables).toEqual({
      subscriptions: 'acme_hookd_subscriptions',
      deliveries: 'acme_hookd_deliveries',
      deliveryPayloads: 'acme_hookd_delivery_payloads',
      deliveryAttempts: 'acme_hookd_delivery_attempts',
      idempotencyStore: 'acme_hookd_idempotency_store',
      circuitBreakerState: 'acme_hookd_circuit_breaker_state',
      schemaMigrations: 'acme_hookd_schema_migrations',
    });
    expect(config.workChannel).toBe('acme_hookd_work');
    expect(config.indexName('deliveries', 'claim')).toBe('idx_acme_hookd_deliveries_claim');
    expect(config.uniqueIndexName('subscriptions', 'tenant_url')).toBe(
      'idx_acme_hookd_subscriptions_tenant_url_unique',
    );
    expect(config.checkConstraintName('deliveries', 'status')).toBe(
      'chk_acme_hookd_deliveries_status',
    );
    expect(config.foreignKeyName('deliveries', 'subscription')).toBe(
      'fk_acme_hookd_deliveries_subscription',
    );
    expect(config.triggerName('subscriptions', 'updated_at')).toBe(
      'trg_acme_hookd_subscriptions_updated_at',
    );
    expect(config.primaryKeyName('deliveries')).toBe('pk_acme_hookd_deliveries');
    expect(config.allTableNames()).toHaveLength(7);
  });

  it('renders every migration for a 32-byte prefix with identifiers that fit and differ', () => {
    const prefix = 'p'.repeat(MAX_PREFIX_LENGTH);
    const config = newSchemaConfig(prefix);
    const identifiers = new Set<string>();
    for (const migration of MIGRATIONS) {
      const sql = renderMigration(migration, config);
      expect(sql).not.toContain('{{');
      for (const identifier of sql.match(/\b\w*p{32}\w*\b/g) ?? []) {
        expect(Buffer.byteLength(identifier)).toBeLessThanOrEqual(63);
        identifiers.add(identifier);
      }
    }
    for (const table of config.allTableNames()) {
      if (table !== config.tables.schemaMigrations) expect(identifiers).toContain(table);
    }
    expect(identifiers).toContain(config.uniqueIndexName('subscriptions', 'tenant_url'));
    expect(identifiers).toContain(config.indexName('deliveries', 'claim'));
    // 0001 creates and 0002 drops the old claim index: every other name is created once.
    expect(identifiers.size).toBeGreaterThan(30);
  });
});

describe('schema lock key', () => {
  it('uses the "hkds" class and an FNV-1a-32 hash of the namespaced prefix', () => {
    expect(SCHEMA_LOCK_CLASS_ID).toBe(0x686b6473);
    expect(schemaLockKey('acme')).toEqual([0x686b6473, 1752430878]);
    expect(schemaLockKey('acme')[1]).not.toBe(schemaLockKey('acmf')[1]);
    for (const prefix of ['a', 'x'.repeat(32), 'billing_v2']) {
      const [, objectId] = schemaLockKey(prefix);
      expect(Number.isInteger(objectId)).toBe(true);
      expect(objectId).toBeGreaterThanOrEqual(-(2 ** 31));
      expect(objectId).toBeLessThan(2 ** 31);
    }
  });
});
