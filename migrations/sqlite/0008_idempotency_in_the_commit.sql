-- An Idempotency-Key is now recorded by the same transaction that stores
-- its command's events (or, for a refused command, by a transaction of its
-- own), together with the command's outcome. There are no claims any more,
-- so nothing can be left "in progress". Records of the old table held HTTP
-- responses in another shape; they are dropped (a retry of a request made
-- before this upgrade runs again).
DROP TABLE idempotency_keys;

CREATE TABLE idempotency_records (
    scope       text   NOT NULL,
    key         text   NOT NULL,
    -- Digest of the request, to tell a retry from a key reused for another request.
    fingerprint text   NOT NULL,
    -- JSON: {"ok": <the command's outcome>} or {"err": <why it was refused>}.
    outcome     text   NOT NULL,
    recorded_at bigint NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_records_age ON idempotency_records (recorded_at);
