-- A message that keeps failing for reasons that may pass (network, Telegram
-- 5xx, answers it cannot read) is parked after a few tries instead of
-- blocking the ones behind it: status 'parked', with the last error, until
-- an admin retries it (GET/POST /api/v1/notifier/parked).
ALTER TABLE notifier_ledger ADD COLUMN last_error text;
CREATE INDEX notifier_ledger_parked ON notifier_ledger (status);
