-- Fewer index entries and no foreign-key checks on the hot path. A 4-step task wrote ~100
-- B-tree entries; the creation statement also ran one foreign-key check per row it inserted.
--
-- Foreign keys. Each task row's check locked its template's row (`FOR KEY SHARE`): every
-- creation locked the same row from many transactions at once, so PostgreSQL made a MultiXact
-- for nearly every task (1.1 a task, measured with pg_walinspect). Each step row's check locked
-- the task row the same statement had just inserted. The creation statement is the only writer
-- of tasks and steps and inserts both from rows it has just read or written (the task from the
-- template it checked, the steps from the task it inserted), so the insert side of those checks
-- never fails. The delete side is kept by triggers: a template that a task names cannot be
-- deleted or renamed, nor a task that has steps, and neither table can be truncated while the
-- other refers to it (what the keys refused before; a template's delete also waits for the
-- creations in flight). pgbench, 8 clients, a creation-shaped
-- statement: +3 % to +14 % statements a second without the template key alone, +10 % to +27 %
-- with this whole migration.
ALTER TABLE tasker_tasks DROP CONSTRAINT tasker_tasks_namespace_name_version_fkey;
ALTER TABLE tasker_steps DROP CONSTRAINT tasker_steps_task_uuid_fkey;

-- TRUNCATE of a table that the rows of TG_ARGV[0] refer to, refused while there are any.
CREATE FUNCTION tasker_truncate_unreferenced() RETURNS trigger AS $$
DECLARE
    referred BOOLEAN;
BEGIN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', TG_ARGV[0]) INTO referred;
    IF referred THEN
        RAISE EXCEPTION '% cannot be truncated: rows of % refer to it', TG_TABLE_NAME, TG_ARGV[0]
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION tasker_templates_kept() RETURNS trigger AS $$
BEGIN
    -- Creations in flight commit first, so their tasks are seen (the key's lock did the same).
    LOCK TABLE tasker_tasks IN SHARE MODE;
    IF EXISTS (SELECT 1 FROM tasker_tasks
                WHERE namespace = OLD.namespace AND name = OLD.name AND version = OLD.version) THEN
        RAISE EXCEPTION 'template %/% %: tasks name it (% refused)', OLD.namespace, OLD.name, OLD.version, TG_OP
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasker_templates_kept_delete
    BEFORE DELETE ON tasker_templates
    FOR EACH ROW EXECUTE FUNCTION tasker_templates_kept();
CREATE TRIGGER tasker_templates_kept_update
    BEFORE UPDATE OF namespace, name, version ON tasker_templates
    FOR EACH ROW
    WHEN ((OLD.namespace, OLD.name, OLD.version) IS DISTINCT FROM (NEW.namespace, NEW.name, NEW.version))
    EXECUTE FUNCTION tasker_templates_kept();
CREATE TRIGGER tasker_templates_kept_truncate
    BEFORE TRUNCATE ON tasker_templates
    FOR EACH STATEMENT EXECUTE FUNCTION tasker_truncate_unreferenced('tasker_tasks');

CREATE FUNCTION tasker_tasks_kept() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tasker_steps WHERE task_uuid = OLD.task_uuid) THEN
        RAISE EXCEPTION 'task %: it has steps (% refused)', OLD.task_uuid, TG_OP
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasker_tasks_kept_delete
    BEFORE DELETE ON tasker_tasks
    FOR EACH ROW EXECUTE FUNCTION tasker_tasks_kept();
CREATE TRIGGER tasker_tasks_kept_update
    BEFORE UPDATE OF task_uuid ON tasker_tasks
    FOR EACH ROW WHEN (OLD.task_uuid IS DISTINCT FROM NEW.task_uuid)
    EXECUTE FUNCTION tasker_tasks_kept();
CREATE TRIGGER tasker_tasks_kept_truncate
    BEFORE TRUNCATE ON tasker_tasks
    FOR EACH STATEMENT EXECUTE FUNCTION tasker_truncate_unreferenced('tasker_steps');

-- Transitions are read by task, in id order: the key is (task_uuid, id), one index where there
-- were two (the id alone, which no statement reads by, and (task_uuid, id)). 11 of a 4-step
-- task's 15 transitions are written per step.
ALTER TABLE tasker_transitions DROP CONSTRAINT tasker_transitions_pkey;
DROP INDEX tasker_transitions_by_task;
ALTER TABLE tasker_transitions ADD CONSTRAINT tasker_transitions_pkey PRIMARY KEY (task_uuid, id);

-- A task's steps are found through (task_uuid, name), unique; (task_uuid, position) duplicated
-- it for the order of a handful of rows.
DROP INDEX tasker_steps_by_task;

-- Most tasks have no idempotency key: they no longer put a NULL entry into its unique index
-- (at creation and at each update of the task that cannot stay on its page).
ALTER TABLE tasker_tasks DROP CONSTRAINT tasker_tasks_idempotency_key_key;
CREATE UNIQUE INDEX tasker_tasks_idempotency_key_key ON tasker_tasks (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
