-- The two audit tables' indexes by task took 1.4 KB of the ~8.3 KB a 4-step task added to the
-- database (measured over a minute of the soak, 44,761 tasks): one entry per row, 10 events and
-- 15 transitions a task, each entry a task uuid and the row's position in its order.
--
-- Each is now keyed by the task alone. A task's entries then share one key, and PostgreSQL
-- stores the equal keys of a leaf page once, with the list of their rows (deduplication):
-- events' index went from 676 to 104 bytes a task and transitions' from 760 to 148 (same
-- soak). The statements that read a task's rows sort its few rows themselves (events by
-- (xid, id), transitions by id).
DROP INDEX tasker_events_by_task;
CREATE INDEX tasker_events_by_task ON tasker_events (task_uuid);

ALTER TABLE tasker_transitions DROP CONSTRAINT tasker_transitions_pkey;
CREATE INDEX tasker_transitions_by_task ON tasker_transitions (task_uuid);
