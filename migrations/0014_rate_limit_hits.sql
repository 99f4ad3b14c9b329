-- Requests the per-IP limiter refused (429), counted per hour and per guarded action, for the
-- console's Health area. Each isolate adds its refusals in at most about one write a second
-- (observability/rate-limit-hits.ts), so a flood being refused never becomes a write per request.
-- The cron run deletes hours older than seven days.
CREATE TABLE rate_limit_hits (
  hour INTEGER NOT NULL,   -- the hour's start, Unix seconds
  action TEXT NOT NULL,    -- the limited action (login, refresh, scim, ...)
  hits INTEGER NOT NULL,
  PRIMARY KEY (hour, action)
) WITHOUT ROWID;
