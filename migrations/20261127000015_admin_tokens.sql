-- Bearer tokens of the admin API, kept only as SHA-256 hashes of the token text.
CREATE TABLE admin_tokens (
    id           uuid        PRIMARY KEY,
    -- who or what uses the token; recorded with the operator decisions made with it
    name         text        NOT NULL,
    token_hash   bytea       NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
