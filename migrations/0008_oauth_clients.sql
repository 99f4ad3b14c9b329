-- Apps and machines that use Gatehouse as their authorization server (README "Apps (OpenID
-- Connect)", "Machines"). Lists are JSON arrays. Secrets are kept only as SHA-256 hashes of
-- high-entropy values the gateway generated; a rotated secret stays valid until
-- previous_secret_expires_at. token_epoch is part of every service token's session id, so
-- disabling a client (or rotating the epoch) revokes its tokens like a session's.
CREATE TABLE oauth_clients (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('confidential', 'public')),
  auth_method TEXT NOT NULL CHECK (auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')),
  secret_hash TEXT,
  previous_secret_hash TEXT,
  previous_secret_expires_at INTEGER,
  jwks TEXT,
  redirect_uris TEXT NOT NULL DEFAULT '[]',
  post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]',
  grant_types TEXT NOT NULL DEFAULT '["authorization_code","refresh_token"]',
  allowed_scopes TEXT NOT NULL DEFAULT '["openid","profile","email","offline_access"]',
  allowed_audiences TEXT NOT NULL DEFAULT '[]',
  backchannel_logout_uri TEXT,
  first_party INTEGER NOT NULL DEFAULT 0,
  source TEXT NOT NULL DEFAULT 'admin' CHECK (source IN ('admin', 'dynamic')),
  token_epoch TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  disabled_at INTEGER
);
