import { nanoid } from 'nanoid';

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
  return `${ID_PREFIX.attempt}_${nanoid(ID_RANDOM_LENGTH)}`;
}

/** A new test ping id: `test_` + 21-character nanoid. */
export function generateTestPingId(): string {
  return `${TEST_PING_ID_PREFIX}_${nanoid(ID_RANDOM_LENGTH)}`;
}

/** A new claim token: unguessable, compared as text, so it survives any round trip exactly. */
export function generateClaimToken(): string {
  return nanoid(ID_RANDOM_LENGTH);
}
