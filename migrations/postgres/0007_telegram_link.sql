-- Linking a client's Telegram chat: the read model shows the linked chat,
-- and the one-time codes of `POST /api/v1/me/telegram-link` are kept hashed
-- (SHA-256) until used or expired.
ALTER TABLE users ADD COLUMN telegram_chat_id bigint;

CREATE TABLE telegram_link_codes (
    code_hash  text PRIMARY KEY,
    user_id    text NOT NULL,
    expires_at bigint NOT NULL,
    used_at    bigint
);
CREATE INDEX telegram_link_codes_user ON telegram_link_codes (user_id);

-- Reminders look for appointments by start time alone.
CREATE INDEX appointments_start ON appointments (start_at);

-- Messages left `sending` by a stopped process are looked for by age.
CREATE INDEX notifier_ledger_sending ON notifier_ledger (updated_at) WHERE status = 'sending';
