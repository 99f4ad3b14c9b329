-- Second factors (issue 12, part A): how and when a session signed in, authenticator-app
-- (TOTP) secrets, recovery codes, the per-account limit on second-factor guesses, and the
-- pending state between a first factor and the second. Times are Unix seconds.

-- How the session's user proved who they are (RFC 8176 `amr` values, a JSON list) and when
-- (`auth_time`). Refresh keeps both; a step-up replaces them. Sessions from before this
-- migration read as an unknown method signed in when the session was created.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '[]';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;

-- One authenticator app per user. `secret_encrypted` is a JWE (dir + A256GCM) under a key
-- derived from TOKEN_ENCRYPTION_KEY, naming the user it belongs to. Unconfirmed until the
-- first valid code (`confirmed_at`). `last_used_step` is the RFC 6238 time step of the last
-- accepted code: a code is accepted only for a later step, so none is usable twice.
CREATE TABLE totp_factors (
  user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  secret_encrypted TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  confirmed_at INTEGER,
  last_used_step INTEGER
);

-- Single-use recovery codes: SHA-256 (base64url) of an 80-bit random code, never the code.
CREATE TABLE recovery_codes (
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  used_at INTEGER,
  PRIMARY KEY (user_id, code_hash)
);

-- Wrong second-factor codes per account and window (like login_failures, keyed by user id:
-- ids are case-sensitive, so not in login_failures, whose key is NOCASE).
CREATE TABLE second_factor_failures (
  user_id TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  window_start INTEGER NOT NULL
);

-- A first factor passed, the second is still owed: no token exists yet. `id_hash` is the
-- SHA-256 of the 256-bit handle the client holds (cookie or `mfa_token`). Single use
-- (`used_at`), short-lived (`expires_at`). `purpose` is `verify` (give a factor) or `enrol`
-- (MFA_REQUIRED_ROLES: set one up first).
CREATE TABLE mfa_pending (
  id_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose TEXT NOT NULL,
  amr TEXT NOT NULL,
  provider TEXT,
  mode TEXT NOT NULL,
  return_to TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE INDEX mfa_pending_expires ON mfa_pending (expires_at);
