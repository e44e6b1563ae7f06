-- node-hookd migration 0001: baseline.
--
-- The data model of go-hookd schema v0.6.0 with its later additive columns (idempotency_key,
-- attempt_budget), with these corrections:
--   * delivery_attempts.status_code accepts every 3-digit code a receiver can send (0 = no
--     response); go-hookd's CHECK <= 599 made the attempt write fail for exotic codes.
--   * subscriptions.retry_policy defaults to the JSON node-hookd writes (camelCase, milliseconds),
--     i.e. the default policy of defaultConfig(); go-hookd's default used string durations its
--     own code could not read.
--   * idempotency_store has no foreign key (its scope is a subscription id or an inline hash)
--     and names its scope column `scope`.
--   * subscriptions.updated_at is written by the application, not by a trigger, so the record
--     returned by an update is the record stored.
--   * only the indexes the queries use; every index on deliveries is rewritten on each status
--     change, so unused ones cost throughput.
--
-- {{prefix}} is replaced by the validated table prefix; every identifier containing it is then
-- shortened to PostgreSQL's 63-byte limit. Released migrations are never edited: add a new file.

CREATE TABLE {{prefix}}_hookd_subscriptions (
    id           varchar(255) NOT NULL,
    tenant_id    varchar(255) NOT NULL,
    url          text         NOT NULL,
    secret       varchar(512) NOT NULL,
    event_types  text[]       NOT NULL,
    filters      jsonb        NOT NULL DEFAULT '{}',
    status       varchar(50)  NOT NULL DEFAULT 'active',
    retry_policy jsonb        NOT NULL
        DEFAULT '{"maxAttempts": 10, "initialBackoffMs": 1000, "maxBackoffMs": 3600000, "backoffFactor": 2}',
    headers      jsonb        NOT NULL DEFAULT '{}',
    metadata     jsonb        NOT NULL DEFAULT '{}',
    created_at   timestamptz  NOT NULL DEFAULT now(),
    updated_at   timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pk_{{prefix}}_hookd_subscriptions PRIMARY KEY (id),
    CONSTRAINT idx_{{prefix}}_hookd_subscriptions_tenant_url_unique UNIQUE (tenant_id, url),
    CONSTRAINT chk_{{prefix}}_hookd_subscriptions_status
        CHECK (status IN ('active', 'paused', 'disabled')),
    CONSTRAINT chk_{{prefix}}_hookd_subscriptions_url CHECK (length(trim(url)) > 0),
    CONSTRAINT chk_{{prefix}}_hookd_subscriptions_secret CHECK (length(secret) > 0),
    CONSTRAINT chk_{{prefix}}_hookd_subscriptions_event_types CHECK (cardinality(event_types) > 0)
);
COMMENT ON TABLE {{prefix}}_hookd_subscriptions IS 'node-hookd: webhook subscriptions';

-- listSubscriptions: one tenant newest first, or every tenant newest first.
CREATE INDEX idx_{{prefix}}_hookd_subscriptions_tenant_created
    ON {{prefix}}_hookd_subscriptions (tenant_id, created_at DESC);
CREATE INDEX idx_{{prefix}}_hookd_subscriptions_created
    ON {{prefix}}_hookd_subscriptions (created_at DESC);
-- listSubscriptions({ eventTypes }): event_types && $n.
CREATE INDEX idx_{{prefix}}_hookd_subscriptions_event_types
    ON {{prefix}}_hookd_subscriptions USING gin (event_types);

CREATE TABLE {{prefix}}_hookd_deliveries (
    id              varchar(255) NOT NULL,
    subscription_id varchar(255),
    tenant_id       varchar(255) NOT NULL,
    event_type      varchar(255) NOT NULL,
    payload         jsonb        NOT NULL,
    url             text,
    secret          varchar(512),
    status          varchar(50)  NOT NULL DEFAULT 'pending',
    attempt_count   integer      NOT NULL DEFAULT 0,
    max_attempts    integer      NOT NULL,
    attempt_budget  integer,
    next_retry_at   timestamptz,
    completed_at    timestamptz,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    idempotency_key varchar(255),
    CONSTRAINT pk_{{prefix}}_hookd_deliveries PRIMARY KEY (id),
    CONSTRAINT fk_{{prefix}}_hookd_deliveries_subscription FOREIGN KEY (subscription_id)
        REFERENCES {{prefix}}_hookd_subscriptions (id) ON DELETE CASCADE,
    CONSTRAINT chk_{{prefix}}_hookd_deliveries_status
        CHECK (status IN ('pending', 'success', 'failed', 'dead_letter')),
    CONSTRAINT chk_{{prefix}}_hookd_deliveries_attempt_count CHECK (attempt_count >= 0),
    CONSTRAINT chk_{{prefix}}_hookd_deliveries_max_attempts CHECK (max_attempts >= 0),
    CONSTRAINT chk_{{prefix}}_hookd_deliveries_target
        CHECK (subscription_id IS NOT NULL OR url IS NOT NULL)
);
COMMENT ON TABLE {{prefix}}_hookd_deliveries IS 'node-hookd: webhook deliveries and their state';

-- The subscription's deliveries: ON DELETE CASCADE, wakeSubscriptionDeliveries, list filters.
CREATE INDEX idx_{{prefix}}_hookd_deliveries_subscription
    ON {{prefix}}_hookd_deliveries (subscription_id);
-- listDeliveries / dead letters / cleanup of one tenant, newest first.
CREATE INDEX idx_{{prefix}}_hookd_deliveries_tenant_status_created
    ON {{prefix}}_hookd_deliveries (tenant_id, status, created_at DESC);
-- Fleet-wide retention sweeps (status + createdBefore), queue depth and stats by status.
CREATE INDEX idx_{{prefix}}_hookd_deliveries_status_created
    ON {{prefix}}_hookd_deliveries (status, created_at);
-- The claim (go-hookd's shape; 0002 replaces it).
CREATE INDEX idx_{{prefix}}_hookd_deliveries_pending
    ON {{prefix}}_hookd_deliveries (status, next_retry_at, created_at)
    WHERE status = 'pending';

CREATE TABLE {{prefix}}_hookd_delivery_attempts (
    id               varchar(255) NOT NULL,
    delivery_id      varchar(255) NOT NULL,
    attempt_number   integer      NOT NULL,
    status_code      integer      NOT NULL DEFAULT 0,
    response_body    text,
    response_headers jsonb        NOT NULL DEFAULT '{}',
    error            text,
    duration_ms      bigint       NOT NULL DEFAULT 0,
    attempted_at     timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pk_{{prefix}}_hookd_delivery_attempts PRIMARY KEY (id),
    -- Also serves "attempts of a delivery, in order" and the cascade from deliveries.
    CONSTRAINT idx_{{prefix}}_hookd_delivery_attempts_delivery_number_unique
        UNIQUE (delivery_id, attempt_number),
    CONSTRAINT fk_{{prefix}}_hookd_delivery_attempts_delivery FOREIGN KEY (delivery_id)
        REFERENCES {{prefix}}_hookd_deliveries (id) ON DELETE CASCADE,
    CONSTRAINT chk_{{prefix}}_hookd_delivery_attempts_attempt_number CHECK (attempt_number > 0),
    CONSTRAINT chk_{{prefix}}_hookd_delivery_attempts_status_code
        CHECK (status_code BETWEEN 0 AND 999),
    CONSTRAINT chk_{{prefix}}_hookd_delivery_attempts_duration CHECK (duration_ms >= 0)
);
COMMENT ON TABLE {{prefix}}_hookd_delivery_attempts IS 'node-hookd: one row per HTTP attempt';

CREATE TABLE {{prefix}}_hookd_idempotency_store (
    idempotency_key varchar(255) NOT NULL,
    scope           varchar(255) NOT NULL,
    expires_at      timestamptz  NOT NULL,
    created_at      timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT pk_{{prefix}}_hookd_idempotency_store PRIMARY KEY (idempotency_key, scope)
);
COMMENT ON TABLE {{prefix}}_hookd_idempotency_store IS
    'node-hookd: idempotency keys; scope = subscription id or inline:<sha256 of tenant and url>';

-- Expiry sweeps.
CREATE INDEX idx_{{prefix}}_hookd_idempotency_store_expires
    ON {{prefix}}_hookd_idempotency_store (expires_at);
-- deleteSubscription removes the subscription's keys.
CREATE INDEX idx_{{prefix}}_hookd_idempotency_store_scope
    ON {{prefix}}_hookd_idempotency_store (scope);

CREATE TABLE {{prefix}}_hookd_circuit_breaker_state (
    endpoint      text        NOT NULL,
    state         varchar(50) NOT NULL DEFAULT 'closed',
    failure_count integer     NOT NULL DEFAULT 0,
    success_count integer     NOT NULL DEFAULT 0,
    last_failure  timestamptz,
    opened_at     timestamptz,
    next_retry_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT pk_{{prefix}}_hookd_circuit_breaker_state PRIMARY KEY (endpoint),
    CONSTRAINT chk_{{prefix}}_hookd_circuit_breaker_state_state
        CHECK (state IN ('closed', 'half_open', 'open')),
    CONSTRAINT chk_{{prefix}}_hookd_circuit_breaker_state_failure_count CHECK (failure_count >= 0),
    CONSTRAINT chk_{{prefix}}_hookd_circuit_breaker_state_success_count CHECK (success_count >= 0)
);
COMMENT ON TABLE {{prefix}}_hookd_circuit_breaker_state IS
    'node-hookd: circuit breaker of each endpoint URL, shared by every process';
