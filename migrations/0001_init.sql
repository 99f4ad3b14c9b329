-- Gatehouse schema: users, their provider identities, sessions, and the audit trail.
-- Times are Unix seconds. Ids are random URL-safe strings made by the Worker.

CREATE TABLE users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL COLLATE NOCASE,
  email_verified INTEGER NOT NULL DEFAULT 0,
  name TEXT,
  avatar_url TEXT,
  password_hash TEXT,
  roles TEXT NOT NULL DEFAULT '[]',
  disabled_at INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE);

CREATE TABLE identities (
  provider TEXT NOT NULL,
  subject TEXT NOT NULL,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email TEXT,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  -- AES-GCM ciphertext of the provider's tokens, only with STORE_PROVIDER_TOKENS=true.
  tokens_encrypted TEXT,
  PRIMARY KEY (provider, subject)
);
CREATE INDEX identities_user ON identities (user_id);

-- One row per sign-in session. refresh_hash is SHA-256 of the current refresh token.
-- family names the chain of refresh tokens the session has issued.
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  refresh_hash TEXT NOT NULL,
  family TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  last_used_at INTEGER NOT NULL,
  revoked_at INTEGER,
  user_agent TEXT,
  ip TEXT,
  provider TEXT
);
CREATE UNIQUE INDEX sessions_refresh_hash ON sessions (refresh_hash);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Refresh tokens a session has already rotated away from. Seeing one again means it was
-- copied: the session ends (reuse detection).
CREATE TABLE rotated_refresh_tokens (
  hash TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  rotated_at INTEGER NOT NULL
);
CREATE INDEX rotated_refresh_tokens_session ON rotated_refresh_tokens (session_id);

CREATE TABLE auth_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  outcome TEXT NOT NULL,
  user_id TEXT,
  ip TEXT,
  user_agent TEXT,
  detail TEXT
);
CREATE INDEX auth_events_at ON auth_events (at);
CREATE INDEX auth_events_user ON auth_events (user_id, at);

-- Failed password sign-ins per account, for the back-off in D1 (burst limits are per IP).
CREATE TABLE login_failures (
  email TEXT PRIMARY KEY COLLATE NOCASE,
  count INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  last_failure_at INTEGER NOT NULL
);
