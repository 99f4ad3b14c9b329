-- The audit log by event name, newest first: the console's filter by event, and the sessions
-- listing's look-up of who signed in lately (`login` successes since a time), each a range of
-- this index instead of a scan of every event in the period.
CREATE INDEX auth_events_event ON auth_events (event, at);
