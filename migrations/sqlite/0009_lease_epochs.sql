-- Each time a lease changes hands its epoch grows, so a holder that stalled
-- and lost its lease cannot write as if it still held it: writes made under
-- a lease (the relay's checkpoint) check holder and epoch in the same
-- statement. A released lease is expired, not deleted, so epochs never repeat.
ALTER TABLE leases ADD COLUMN epoch bigint NOT NULL DEFAULT 1;
