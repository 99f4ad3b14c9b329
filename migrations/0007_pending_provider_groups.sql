-- A provider sign-in that still owes its second factor keeps the provider's groups (and the
-- sealed grant to re-read them) until it completes: JSON, null for other sign-ins.
ALTER TABLE mfa_pending ADD COLUMN provider_groups TEXT;
