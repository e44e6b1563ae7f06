-- node-hookd migration 0002: lease claims with a fencing token, payloads stored once.
--
-- * claim_token: the fencing token of the claim currently held on a pending delivery (NULL when
--   none). Renew, release and complete must present it; it is text compared as text, so it
--   survives any round trip exactly (go-hookd used the lease timestamp, whose microseconds a
--   JavaScript Date cannot carry).
-- * delivery_payloads: the exact request body, written once at enqueue and never updated. Every
--   claim and completion rewrites the whole delivery row (status and next_retry_at are indexed,
--   so those updates are never HOT); keeping a ~1 KiB body out of that row halves the WAL per
--   delivery. The body is text, not jsonb, so the bytes that were signed are the bytes stored:
--   key order, spacing and large integers survive unchanged. The trace context written at
--   enqueue lives there too.
-- * The claim index orders pending rows by due time, COALESCE(next_retry_at, created_at): a
--   fresh row is due when created, a released row (next_retry_at NULL) keeps its original place.
-- * idempotency_store.delivery_id: which delivery holds a key, for the duplicate error.
-- * attempt_budget becomes NOT NULL (rows written before it existed get their max_attempts).

CREATE TABLE {{prefix}}_hookd_delivery_payloads (
    delivery_id   varchar(255) NOT NULL,
    body          text         NOT NULL,
    -- W3C traceparent of the span that queued the delivery (tracing on), for span links.
    trace_context text,
    CONSTRAINT pk_{{prefix}}_hookd_delivery_payloads PRIMARY KEY (delivery_id),
    CONSTRAINT fk_{{prefix}}_hookd_delivery_payloads_delivery FOREIGN KEY (delivery_id)
        REFERENCES {{prefix}}_hookd_deliveries (id) ON DELETE CASCADE
);
COMMENT ON TABLE {{prefix}}_hookd_delivery_payloads IS
    'node-hookd: the exact request body of each delivery, written once';

-- Rows queued before this migration keep their payload (as jsonb text: already normalised).
INSERT INTO {{prefix}}_hookd_delivery_payloads (delivery_id, body)
SELECT id, payload::text FROM {{prefix}}_hookd_deliveries;

UPDATE {{prefix}}_hookd_deliveries SET attempt_budget = max_attempts WHERE attempt_budget IS NULL;

ALTER TABLE {{prefix}}_hookd_deliveries
    DROP COLUMN payload,
    ADD COLUMN claim_token text,
    ALTER COLUMN attempt_budget SET NOT NULL,
    ADD CONSTRAINT chk_{{prefix}}_hookd_deliveries_attempt_budget CHECK (attempt_budget >= 0);

DROP INDEX idx_{{prefix}}_hookd_deliveries_pending;
CREATE INDEX idx_{{prefix}}_hookd_deliveries_claim
    ON {{prefix}}_hookd_deliveries ((COALESCE(next_retry_at, created_at)), created_at)
    WHERE status = 'pending';

ALTER TABLE {{prefix}}_hookd_idempotency_store ADD COLUMN delivery_id varchar(255);
