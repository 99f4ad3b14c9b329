-- Sign-in by email code (issue 11, EMAIL_LOGIN=enabled): one live code per address. Only the
-- SHA-256 of (address, code) is stored. `attempts` counts guesses at this code: at the limit the
-- code is dead until a new one is requested. Times are Unix seconds.
CREATE TABLE email_codes (
  email TEXT PRIMARY KEY COLLATE NOCASE,
  code_hash TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX email_codes_expires ON email_codes (expires_at);
