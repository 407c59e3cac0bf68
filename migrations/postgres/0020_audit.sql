-- The audit sealer's hash chain (one row per event, in position order) and
-- its signed checkpoints.

CREATE TABLE audit_chain (
    position bigint PRIMARY KEY,
    hash     text NOT NULL
);

CREATE TABLE audit_checkpoints (
    position   bigint PRIMARY KEY,
    hash       text NOT NULL,
    signature  text NOT NULL,
    public_key text NOT NULL,
    signed_at  text NOT NULL
);
