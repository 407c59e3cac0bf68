-- Snapshots of aggregate state, so that a command on a long stream (a
-- product's stock after 100,000 sales, a long-lived subscription) loads the
-- latest snapshot and the events after it instead of the whole stream.
-- A snapshot is a cache: it is written in the same transaction as the
-- events it covers, `format` names the state shape that wrote it (an older
-- format is ignored), and deleting the table's rows loses nothing.
CREATE TABLE aggregate_snapshots (
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    version        bigint NOT NULL,
    format         bigint NOT NULL,
    state          text   NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
