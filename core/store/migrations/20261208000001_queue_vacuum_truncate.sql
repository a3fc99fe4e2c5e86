-- A vacuum of a queue table no longer gives back the empty pages at its end. Doing so takes a
-- lock that stops every claim, result and creation on the queue until the table is cut, and a
-- busy queue fills those pages again within seconds. The engine sets this on each queue it
-- creates (Engine::register_template); this sets it on the queues that exist. A queue this
-- role may not alter (another role created it) keeps its setting, with a notice: the
-- migration does not fail for it.
DO $$
DECLARE
    queue regclass;
BEGIN
    FOR queue IN SELECT to_regclass('pgmq.q_' || queue_name) FROM tasker_namespaces LOOP
        IF queue IS NOT NULL THEN
            BEGIN
                EXECUTE format('ALTER TABLE %s SET (vacuum_truncate = false)', queue);
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE NOTICE 'queue table % keeps vacuum_truncate: %', queue, SQLERRM;
            END;
        END IF;
    END LOOP;
END
$$;
