import { randomFillSync } from 'node:crypto';

import { nanoid, urlAlphabet } from 'nanoid';

import { ID_PREFIX, ID_RANDOM_LENGTH, TEST_PING_ID_PREFIX } from './constants.js';

// nanoid's URL-safe alphabet (A-Z a-z 0-9 _ -) has no '.', which Standard Webhooks forbids in
// `webhook-id`, and 21 characters give ~126 bits of randomness.

/** A new subscription id: `sub_` + 21-character nanoid. */
export function generateSubscriptionId(): string {
  return `${ID_PREFIX.subscription}_${nanoid(ID_RANDOM_LENGTH)}`;
}

/** A new delivery id: `dlv_` + 21-character nanoid. */
export function generateDeliveryId(): string {
  return `${ID_PREFIX.delivery}_${nanoid(ID_RANDOM_LENGTH)}`;
}

/** A new attempt id: `att_` + 21-character nanoid. */
export function generateAttemptId(): string {
  return prefixedNanoid(ATTEMPT_PREFIX);
}

const ATTEMPT_PREFIX = `${ID_PREFIX.attempt}_`;
const ALPHABET = Buffer.from(urlAlphabet, 'latin1');
/** Random bytes for 128 ids at a time, as nanoid pools them. */
const RANDOM = Buffer.alloc(ID_RANDOM_LENGTH * 128);
let randomOffset = RANDOM.length;
const SCRATCH = Buffer.alloc(64);

/**
 * `${prefix}${nanoid(ID_RANDOM_LENGTH)}` (same random source, alphabet and mapping: a random
 * byte & 63), written as bytes and read out as one string. nanoid appends its characters one by
 * one, which allocates a string per character; every attempt takes an id.
 */
function prefixedNanoid(prefix: string): string {
  if (randomOffset + ID_RANDOM_LENGTH > RANDOM.length) {
    randomFillSync(RANDOM);
    randomOffset = 0;
  }
  const start = SCRATCH.write(prefix, 0, 'latin1');
  for (let i = 0; i < ID_RANDOM_LENGTH; i++) {
    SCRATCH[start + i] = ALPHABET[RANDOM[randomOffset + i]! & 63]!;
  }
  randomOffset += ID_RANDOM_LENGTH;
  return SCRATCH.toString('latin1', 0, start + ID_RANDOM_LENGTH);
}

/** A new test ping id: `test_` + 21-character nanoid. */
export function generateTestPingId(): string {
  return `${TEST_PING_ID_PREFIX}_${nanoid(ID_RANDOM_LENGTH)}`;
}

/** A new claim token: unguessable, compared as text, so it survives any round trip exactly. */
export function generateClaimToken(): string {
  return nanoid(ID_RANDOM_LENGTH);
}
