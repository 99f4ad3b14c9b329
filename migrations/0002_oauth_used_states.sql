-- OAuth `state` values already used at a callback (SHA-256, base64url). A replayed callback
-- finds its state here and is refused; the primary key makes "first use wins" atomic.
-- Rows are kept until the flow they belonged to would have expired anyway.
CREATE TABLE oauth_used_states (
  state_hash TEXT PRIMARY KEY,
  provider TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX oauth_used_states_expires ON oauth_used_states (expires_at);
