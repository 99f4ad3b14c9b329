-- OpenID Connect Back-Channel Logout from the sign-in providers (README "Provider-initiated
-- sign-out"). The `jti` of every logout token accepted, per provider, kept until the token could
-- no longer be accepted anyway (its `iat` is too old), so one token ends sessions once. In D1,
-- not KV: KV is eventually consistent, so a captured token posted twice to two locations could
-- read "unused" in both; D1's primary takes one INSERT and refuses the second. Expired rows are
-- trimmed whenever a provider's next logout token is stored.
-- `replays` counts the presentations after the first: only the first replay raises an alert.
CREATE TABLE provider_logout_jtis (
  provider TEXT NOT NULL,
  jti TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  replays INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (provider, jti)
);

-- A provider sign-in that still owes its second factor keeps the provider's session id (the ID
-- token's `sid`) and subject for the session it will start, so a logout token naming them finds
-- that session, and spends the sign-in if it comes first.
ALTER TABLE mfa_pending ADD COLUMN provider_sid TEXT;
ALTER TABLE mfa_pending ADD COLUMN provider_subject TEXT;

-- Which account each provider session signed into, and as which provider subject: a logout
-- token may name only the provider's session (`sid`, no `sub`), or a subject whose identity the
-- account has since unlinked, and sessions are found through their user. One row per provider,
-- provider session and user, written before the Gatehouse session is stored, kept until that
-- session's absolute end (SESSION_MAX_AGE after sign-in); expired rows are trimmed at sign-in.
CREATE TABLE provider_sessions (
  provider TEXT NOT NULL,
  sid TEXT NOT NULL,
  -- Goes with the account, as its identities do: nothing of a deleted account's provider stays.
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  subject TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (provider, sid, user_id)
);
CREATE INDEX provider_sessions_subject ON provider_sessions (provider, subject);
-- Each sign-in trims a few expired rows: found through this, not by reading the whole table.
CREATE INDEX provider_sessions_expires ON provider_sessions (expires_at);

-- Provider sessions a logout token has ended, kept while a sign-in begun in them could still
-- arrive (an authorization code issued before the logout and exchanged after it, then a second
-- factor): such a sign-in is refused rather than starting a session nothing would end.
-- `subject` is the token's `sub`, or '' when it named the provider session alone (any subject).
CREATE TABLE provider_ended_sessions (
  provider TEXT NOT NULL,
  sid TEXT NOT NULL,
  subject TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (provider, sid, subject)
);
