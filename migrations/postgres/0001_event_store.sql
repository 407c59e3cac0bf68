-- The event store used by postgres-es, extended with the global log.
-- postgres-es names its INSERT columns, so the extra columns (position,
-- recorded_at) are filled by the trigger below.
CREATE TABLE events (
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL CHECK (sequence >= 0),
    event_type     text   NOT NULL,
    event_version  text   NOT NULL,
    payload        json   NOT NULL,
    metadata       json   NOT NULL,
    position       bigint NOT NULL,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_position ON events (position);

-- Snapshots table: postgres-es needs it to exist even when unused.
CREATE TABLE snapshots (
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          json   NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Global position in commit order. The counter row is locked by the first
-- insert of an append transaction and released at its commit or rollback, so
-- positions are handed out in commit order and are dense: a reader that sees
-- position N has already been able to see every position below N. A rolled
-- back transaction rolls its counter increment back too. The cost is that
-- appends commit one after another; see README "Global log".
CREATE TABLE event_position_counter (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_position bigint NOT NULL
);
INSERT INTO event_position_counter (singleton, last_position) VALUES (true, 0);

CREATE FUNCTION annals_assign_position() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE event_position_counter
       SET last_position = last_position + 1
     RETURNING last_position INTO NEW.position;
    -- The store records the time; whatever a caller put there is replaced.
    NEW.recorded_at := clock_timestamp();
    RETURN NEW;
END
$$;

CREATE TRIGGER events_assign_position
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION annals_assign_position();

-- Events are never updated or deleted, not even by hand.
CREATE FUNCTION annals_events_are_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_immutable_rows
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION annals_events_are_immutable();
CREATE TRIGGER events_immutable_table
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION annals_events_are_immutable();
