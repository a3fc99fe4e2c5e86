-- API tokens: a name, the SHA-256 of the secret's key (never the secret), per-namespace scopes,
-- an optional expiry and a revocation time. `token_id` is the public part of the secret that
-- finds the row; the key is compared in constant time by the server.
CREATE TABLE tasker_api_tokens (
    token_id      TEXT PRIMARY KEY CHECK (token_id ~ '^[0-9a-f]{16}$'),
    name          TEXT NOT NULL UNIQUE,
    key_sha256    BYTEA NOT NULL CHECK (octet_length(key_sha256) = 32),
    scopes        TEXT[] NOT NULL CHECK (cardinality(scopes) > 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);
