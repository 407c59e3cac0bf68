-- Read models of the studio: plans, and subscriptions with the state
-- their events fold to (JSON; the standing on any day is derived from it).

CREATE TABLE plans (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    length_unit text NOT NULL,   -- days | months
    length      bigint NOT NULL,
    price       text NOT NULL,
    currency    text NOT NULL,
    freeze_days bigint NOT NULL,
    active      bigint NOT NULL,
    version     bigint NOT NULL
);

CREATE TABLE subscriptions (
    id          text PRIMARY KEY,
    client_id   text NOT NULL,
    plan_id     text NOT NULL,
    state       text NOT NULL,
    version     bigint NOT NULL,
    client_name text
);
CREATE INDEX subscriptions_client ON subscriptions (client_id);
