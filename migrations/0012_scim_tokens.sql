-- Bearer tokens an administrator creates for the directory (README "SCIM provisioning"), beside
-- the SCIM_TOKEN secret. A token is `<id>.<secret>`: the id finds its row (one read by key), and
-- only the SHA-256 of the secret is kept; the secret before the last rotation keeps working until
-- previous_secret_expires_at. Any row (enabled or disabled) turns the SCIM endpoints on.
CREATE TABLE scim_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  previous_secret_hash TEXT,
  previous_secret_expires_at INTEGER,
  -- The administrator who created it (kept when that account is deleted: the audit names them too).
  created_by TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  -- Written at most once a minute per token, not on every request.
  last_used_at INTEGER,
  disabled_at INTEGER
);
