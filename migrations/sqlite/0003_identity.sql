-- Credentials: the password hash (argon2id PHC string) per user. Never in
-- an event; written after the user's registration event.
CREATE TABLE credentials (
    user_id       text    PRIMARY KEY,
    username      text    NOT NULL UNIQUE,
    password_hash text    NOT NULL,
    updated_at    integer    NOT NULL
);

-- Bearer tokens, stored as SHA-256 of the token: a leaked table grants nothing.
CREATE TABLE auth_tokens (
    token_hash text PRIMARY KEY,
    user_id    text NOT NULL,
    created_at integer NOT NULL,
    expires_at integer NOT NULL
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

-- Single-use password reset tokens, also stored hashed.
CREATE TABLE password_resets (
    token_hash text PRIMARY KEY,
    user_id    text NOT NULL,
    expires_at integer NOT NULL,
    used_at    integer
);

-- Read model "users" (projection of the user aggregate).
CREATE TABLE users (
    id         text PRIMARY KEY,
    username   text NOT NULL UNIQUE,
    full_name  text NOT NULL,
    email      text,
    phone      text,
    profile    text NOT NULL,
    -- ",admin,client," so that a role filter is one LIKE.
    roles      text NOT NULL,
    active     integer NOT NULL,
    version    integer NOT NULL
);
