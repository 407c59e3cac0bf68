-- One key per person whose personal data events carry, encrypted with it
-- (crypto-shredding): deleting the row erases that data everywhere it was
-- written, while the hash chain, which covers the ciphertext, still holds.
CREATE TABLE privacy_keys (
    subject    text PRIMARY KEY,
    key        text NOT NULL,
    created_at bigint NOT NULL
);
