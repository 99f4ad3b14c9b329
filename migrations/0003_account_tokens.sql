-- Single-use tokens mailed to users (issue 11): email verification, password reset, adding a
-- password, confirming a new email address. Only the SHA-256 of a token is stored (a database
-- leak hands out no working link). One live token per user and purpose: issuing a new one
-- deletes the older ones, and any password change deletes every reset token of the user.
CREATE TABLE account_tokens (
  token_hash TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose TEXT NOT NULL,
  -- The address the token is about (the new address for an email change), normalised.
  email TEXT NOT NULL COLLATE NOCASE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);
