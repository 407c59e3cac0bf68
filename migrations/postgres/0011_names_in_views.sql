-- Views show display names next to ids. Each read model keeps the names it
-- shows from the events it consumes (a user's full name, a service's name),
-- so a rebuild of it alone gives the same rows, and updates them when a
-- name changes.
CREATE TABLE read_model_names (
    consumer text NOT NULL,
    kind     text NOT NULL,
    id       text NOT NULL,
    name     text NOT NULL,
    PRIMARY KEY (consumer, kind, id)
);
ALTER TABLE appointments ADD COLUMN client_name text;
ALTER TABLE appointments ADD COLUMN master_name text;
ALTER TABLE appointments ADD COLUMN service_name text;
ALTER TABLE masters ADD COLUMN name text;
ALTER TABLE appointment_facts ADD COLUMN master_name text;
ALTER TABLE appointment_facts ADD COLUMN service_name text;

-- The rows so far have no names: these three read models are rebuilt from
-- the log (position 0) when the server starts next.
DELETE FROM appointments;
DELETE FROM masters;
DELETE FROM appointment_facts;
UPDATE consumer_checkpoints SET position = 0 WHERE name IN ('appointments', 'masters', 'statistics');
