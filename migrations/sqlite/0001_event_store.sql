-- The event store used by sqlite-es, extended with the global log.
CREATE TABLE events (
    aggregate_type text    NOT NULL,
    aggregate_id   text    NOT NULL,
    sequence       integer NOT NULL CHECK (sequence >= 0),
    event_type     text    NOT NULL,
    event_version  text    NOT NULL,
    payload        text    NOT NULL,
    metadata       text    NOT NULL,
    position       integer,
    recorded_at    text    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;
CREATE UNIQUE INDEX events_position ON events (position);

CREATE TABLE snapshots (
    aggregate_type   text    NOT NULL,
    aggregate_id     text    NOT NULL,
    last_sequence    integer NOT NULL CHECK (last_sequence >= 0),
    current_snapshot integer NOT NULL CHECK (current_snapshot >= 0),
    payload          text    NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
) STRICT;

-- SQLite serializes writers, so the next position is simply one more than
-- the highest; it is set right after the insert, inside the same transaction.
CREATE TRIGGER events_assign_position
AFTER INSERT ON events
BEGIN
    UPDATE events
       SET position = (SELECT COALESCE(MAX(position), 0) + 1 FROM events)
     WHERE rowid = NEW.rowid;
END;

-- Events are never updated or deleted (the only update allowed is the one
-- above, which gives a new row its position).
CREATE TRIGGER events_immutable_update
BEFORE UPDATE ON events
WHEN OLD.position IS NOT NULL
  OR NEW.aggregate_type IS NOT OLD.aggregate_type
  OR NEW.aggregate_id IS NOT OLD.aggregate_id
  OR NEW.sequence IS NOT OLD.sequence
  OR NEW.payload IS NOT OLD.payload
  OR NEW.metadata IS NOT OLD.metadata
  OR NEW.recorded_at IS NOT OLD.recorded_at
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: UPDATE is not allowed');
END;

CREATE TRIGGER events_immutable_delete
BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only: DELETE is not allowed');
END;
