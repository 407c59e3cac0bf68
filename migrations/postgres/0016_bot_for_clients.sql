-- The bot for clients: messages with buttons, registration through the
-- bot, and each client's trainings (for the client card and /me).

-- A message's buttons (Telegram reply markup, JSON), sent with it and with
-- any resend.
ALTER TABLE notifier_ledger ADD COLUMN markup text;

-- Registrations under way in the bot (/register, then the name, then the
-- phone): conversation state, not history; a finished one is deleted.
CREATE TABLE bot_registrations (
    chat_id    bigint PRIMARY KEY,
    full_name  text,
    updated_at bigint NOT NULL
);

-- Each invited client of each training, with where they stand.
CREATE TABLE training_attendance (
    id          text PRIMARY KEY,
    training_id text NOT NULL,
    client_id   text NOT NULL,
    start_at    text NOT NULL,
    status      text NOT NULL
);
CREATE INDEX training_attendance_client ON training_attendance (client_id, start_at);

-- The trainings read model is rebuilt from the log (position 0) when the
-- server starts next, filling training_attendance.
DELETE FROM training_groups;
DELETE FROM trainings;
UPDATE consumer_checkpoints SET position = 0 WHERE name = 'trainings';
