-- The notifier's delivery ledger: one row per (cause, chat). A message is
-- sent only by whoever inserts its row; the text is kept so that a message
-- interrupted by a crash can be sent again on restart.
CREATE TABLE notifier_ledger (
    cause      text NOT NULL,
    chat_id    bigint NOT NULL,
    text       text NOT NULL,
    status     text NOT NULL,
    attempts   bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (cause, chat_id)
);
