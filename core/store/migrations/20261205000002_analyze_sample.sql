-- Autovacuum's pass each minute set the soak's p99 (a latency spike at every pass): ANALYZE of
-- the four task tables took ~1 s of CPU per pass on a 2-core machine, more than their VACUUM.
-- ANALYZE samples 300 rows per unit of the largest statistics target among a table's columns
-- (30,000 rows by default) and sorts or hashes every sampled value of every column.
--
-- Steps, transitions and events are only ever read by key (a step's or task's uuid, the event
-- cursor's xid and id): no plan prices a range or a value of theirs with a histogram. Their
-- columns get a target of 10 (a 3,000-row sample), and the documents they carry (results,
-- errors, details, a step's dependency arrays), which no statement filters on, get none.
-- Tasks are filtered by namespace, name, status, time and correlation id in listings, so their
-- columns keep the default; only the documents and trace fields are skipped.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT a.attrelid::regclass AS tbl, a.attname, format_type(a.atttypid, NULL) AS kind
               FROM pg_attribute a
              WHERE a.attrelid IN ('tasker_steps'::regclass, 'tasker_transitions'::regclass,
                                   'tasker_events'::regclass, 'tasker_tasks'::regclass)
                AND a.attnum > 0 AND NOT a.attisdropped
    LOOP
        IF c.kind = 'jsonb' OR c.kind LIKE '%[]' THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 0', c.tbl, c.attname);
        ELSIF c.tbl <> 'tasker_tasks'::regclass THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 10', c.tbl, c.attname);
        END IF;
    END LOOP;
END
$$;

ALTER TABLE tasker_tasks
    ALTER COLUMN request_hash SET STATISTICS 0, ALTER COLUMN traceparent SET STATISTICS 0,
    ALTER COLUMN tracestate SET STATISTICS 0;
