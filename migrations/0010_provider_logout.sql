-- OpenID Connect Back-Channel Logout from the sign-in providers (README "Provider-initiated
-- sign-out"). The `jti` of every logout token accepted, per provider, kept until the token could
-- no longer be accepted anyway (its `iat` is too old), so one token ends sessions once. In D1,
-- not KV: KV is eventually consistent, so a captured token posted twice to two locations could
-- read "unused" in both; D1's primary takes one INSERT and refuses the second. Expired rows are
-- trimmed whenever a provider's next logout token is stored.
CREATE TABLE provider_logout_jtis (
  provider TEXT NOT NULL,
  jti TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (provider, jti)
);

-- A provider sign-in that still owes its second factor keeps the provider's session id (the ID
-- token's `sid`) for the session it will start, so a logout token naming it finds that session.
ALTER TABLE mfa_pending ADD COLUMN provider_sid TEXT;
