-- The `jti` of every private_key_jwt client assertion accepted (RFC 7523 §3, OpenID Connect
-- Core §9), kept until the assertion's `exp`, so one assertion authenticates once. In D1, not
-- KV: KV is eventually consistent, so two token requests with one captured assertion could
-- both read "unused" in different locations; D1's primary takes one INSERT and refuses the
-- second. Expired rows are trimmed whenever a client's next assertion is stored.
CREATE TABLE client_assertion_jtis (
  client_id TEXT NOT NULL,
  jti TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (client_id, jti)
);
