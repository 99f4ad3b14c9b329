-- Passkeys (WebAuthn credentials), issue 12. One row per registered credential.
-- id is the credential id (base64url), chosen by the authenticator and unique per relying party.
-- public_key is the COSE public key (base64url). counter is the last signature counter seen
-- (0 for authenticators that do not count). device_type is 'singleDevice' or 'multiDevice'
-- (synced); backed_up mirrors the BS flag of the last assertion.
CREATE TABLE passkeys (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  public_key TEXT NOT NULL,
  counter INTEGER NOT NULL DEFAULT 0,
  transports TEXT NOT NULL DEFAULT '[]',
  device_type TEXT NOT NULL,
  backed_up INTEGER NOT NULL DEFAULT 0,
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- WebAuthn challenges handed out and not yet used (SHA-256, base64url). Deleting the row is
-- the use: `DELETE ... RETURNING` makes "first use wins" atomic, as for OAuth states.
-- purpose is 'register' or 'authenticate'; user_id is the user a challenge is bound to
-- (registration, or a second factor), NULL for a passkey sign-in (the user is not yet known).
CREATE TABLE webauthn_challenges (
  challenge_hash TEXT PRIMARY KEY,
  purpose TEXT NOT NULL,
  user_id TEXT,
  expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires_at);
