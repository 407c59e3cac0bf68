-- Read models of the studio: plans, and subscriptions with the state
-- their events fold to (JSON; the standing on any day is derived from it).

CREATE TABLE plans (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    length_unit text NOT NULL,   -- days | months
    length      integer NOT NULL,
    price       text NOT NULL,
    currency    text NOT NULL,
    freeze_days integer NOT NULL,
    active      integer NOT NULL,
    version     integer NOT NULL
);

CREATE TABLE subscriptions (
    id          text PRIMARY KEY,
    client_id   text NOT NULL,
    plan_id     text NOT NULL,
    state       text NOT NULL,
    version     integer NOT NULL,
    client_name text
);
CREATE INDEX subscriptions_client ON subscriptions (client_id);
