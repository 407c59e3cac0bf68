-- The statistics engine's facts: one row per appointment, kept by its own
-- consumer ("statistics"); queries group them by master, service, month
-- and hour.
CREATE TABLE appointment_facts (
    id         text PRIMARY KEY,
    client_id  text NOT NULL,
    master_id  text NOT NULL,
    service_id text NOT NULL,
    start_at   text NOT NULL,
    status     text NOT NULL,
    price      text NOT NULL,
    currency   text NOT NULL,
    version    bigint NOT NULL
);
CREATE INDEX appointment_facts_start ON appointment_facts (start_at);
