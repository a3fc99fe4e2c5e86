-- An event's namespace is its task's: the readers of events join the task already (for the
-- workflow's name, version and correlation id) and take the namespace from it, filtering a
-- stream by namespace too. Stored in each of a task's ~10 event rows it took ~170 bytes a task
-- of heap and WAL, so the engine no longer writes it: a NULL takes no room but its bit in the
-- row's null bitmap. The column stays, nullable, so that a process of an earlier version that
-- still writes it keeps working during an upgrade.
ALTER TABLE tasker_events ALTER COLUMN namespace DROP NOT NULL;
