-- Durable checkpoints: the last global position a consumer has applied.
CREATE TABLE consumer_checkpoints (
    name       text   PRIMARY KEY,
    position   integer NOT NULL CHECK (position >= 0),
    updated_at integer NOT NULL
);

-- Leases: one holder at a time (the NATS relay), renewed while alive.
CREATE TABLE leases (
    name       text   PRIMARY KEY,
    holder     text   NOT NULL,
    expires_at integer NOT NULL
);

-- Idempotency-Key records: the first response of a command, replayed to retries.
CREATE TABLE idempotency_keys (
    scope         text   NOT NULL,
    key           text   NOT NULL,
    request_hash  text   NOT NULL,
    status        integer,
    response_body text,
    created_at    integer NOT NULL,
    PRIMARY KEY (scope, key)
);
