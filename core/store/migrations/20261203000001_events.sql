-- Lifecycle events (spec §5.1). Each row is written by the transaction that makes the state
-- change it reports, so a committed transition always has its event and a rolled-back one never
-- does. Names, workflow identity, correlation id and a completed step's result are not copied:
-- they are read from the task and step rows, which never change once written (a step is
-- completed at most once).
--
-- `xid` is the writing transaction's id. A reader takes only events of transactions older than
-- its snapshot's xmin (every one of them has ended, so that set never grows again) and resumes
-- after the last (xid, id) it saw: nothing is skipped because a transaction committed late, and
-- nothing is read twice. Every transaction that writes events takes the task lock before its
-- first write (or, for a claim, reads a message that the previous transaction of the task made
-- visible), so (xid, id) order is the causal order of one task's events.
CREATE TABLE tasker_events (
    id              BIGSERIAL PRIMARY KEY,
    xid             BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    event_name      TEXT NOT NULL CHECK (event_name IN
        ('task.created','step.started','step.completed','step.retry_scheduled','step.failed',
         'task.completed','task.failed')),
    occurred_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    task_uuid       UUID NOT NULL,
    namespace       TEXT NOT NULL,
    step_uuid       UUID,
    attempt         INT,
    duration_ms     BIGINT,
    error           JSONB,
    retry_delay_ms  BIGINT,
    next_retry_at   TIMESTAMPTZ
);
CREATE INDEX tasker_events_by_xid ON tasker_events (xid, id);
CREATE INDEX tasker_events_by_task ON tasker_events (task_uuid, xid, id);
-- Retention deletes by age; rows arrive in time order, so a BRIN index is enough and costs
-- next to nothing per insert.
CREATE INDEX tasker_events_by_time ON tasker_events USING brin (occurred_at);
