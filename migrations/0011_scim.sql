-- SCIM 2.0 provisioning (README "SCIM provisioning"). The directory's own id for a user
-- (`externalId`); groups the directory manages, and their members: a member row goes with its
-- user or group.
ALTER TABLE users ADD COLUMN scim_external_id TEXT;
-- When the directory first created, wrote or grouped the account: it vouches for the groups (even
-- none) only of the accounts it manages, never of one it has not touched.
ALTER TABLE users ADD COLUMN scim_managed_at INTEGER;
-- When the directory disabled the account (null when enabled, or disabled by the administrator):
-- the directory enables only an account it disabled.
ALTER TABLE users ADD COLUMN scim_disabled_at INTEGER;
CREATE INDEX users_scim_external_id ON users (scim_external_id) WHERE scim_external_id IS NOT NULL;

CREATE TABLE scim_groups (
  id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  external_id TEXT,
  -- A random value each change replaces: a change computed from an older read is refused, and the
  -- statements of one change's batch recognise their own write (nothing half-applied).
  version TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (display_name COLLATE NOCASE);

CREATE TABLE scim_group_members (
  group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);
