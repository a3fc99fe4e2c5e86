-- Autovacuum analyzed the task tables at every one-minute pass under sustained load, and each
-- ANALYZE (and each VACUUM) rewrites the table's pg_class row, which makes every connection
-- plan again every cached statement on that table: a burst of planning that, on two busy
-- cores, queues the tasks behind it.
--
-- ANALYZE comes when the rows changed since the last one (inserts, updates and deletes) pass
-- autovacuum_analyze_scale_factor (0.1) of the table. A step row is written four times
-- (insert, enqueued, started, its result) and a task row about seven, so under a steady load
-- the threshold was passed at every pass however large the tables grew. The statistics of
-- these tables hardly change with their size (steps, transitions and events are read by key
-- only; tasks by namespace, name, status and time, whose shares stay put), so they are taken
-- again once a table has grown by about half, not every minute.
--
-- VACUUM of the append-only rows (inserted, never updated: transitions, events) only sets
-- their pages all-visible and freezes them; it now waits until the table has doubled, not
-- grown by a fifth. Tasks and steps keep the default thresholds for dead rows, and PGMQ's
-- queue tables are left alone.
ALTER TABLE tasker_steps SET (autovacuum_analyze_scale_factor = 2.0);
ALTER TABLE tasker_tasks SET (autovacuum_analyze_scale_factor = 3.0);
ALTER TABLE tasker_transitions SET (autovacuum_analyze_scale_factor = 0.5,
                                    autovacuum_vacuum_insert_scale_factor = 1.0);
ALTER TABLE tasker_events SET (autovacuum_analyze_scale_factor = 0.5,
                               autovacuum_vacuum_insert_scale_factor = 1.0);
