-- The vocabularies of the state columns as PostgreSQL enum types, checked by a cast.
--
-- The columns stay TEXT (every statement binds and reads them as text). What changes is how
-- the CHECK constraints say which words are allowed. `status IN ('pending', ...)` is stored as
-- an expression holding a text array constant, and PostgreSQL reads that stored expression
-- back (one token per byte of the array) and prepares it again for every statement that
-- inserts or updates the table: under a sustained load that was 6.7 % of PostgreSQL's CPU
-- (perf, 30 s of the soak), most of it parsing these arrays. A cast to an enum type is a tiny
-- expression, and the enum's labels are looked up in a cache; a word outside the vocabulary
-- is refused as before, with "invalid input value for enum tasker_step_status".
--
-- The enum types are the one list of each vocabulary in the schema: the engine's tests compare
-- them with the Rust types (TaskStatus, StepStatus, EventName, Backoff).
CREATE TYPE tasker_task_status AS ENUM
    ('pending', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled', 'resolved_manually');
CREATE TYPE tasker_step_status AS ENUM
    ('pending', 'enqueued', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled',
     'resolved_manually');
CREATE TYPE tasker_backoff AS ENUM ('exponential', 'linear', 'none');
CREATE TYPE tasker_event_name AS ENUM
    ('task.created', 'step.started', 'step.completed', 'step.retry_scheduled', 'step.failed',
     'task.completed', 'task.failed');

ALTER TABLE tasker_tasks
    DROP CONSTRAINT tasker_tasks_status_check,
    ADD CONSTRAINT tasker_tasks_status_check CHECK (status::tasker_task_status IS NOT NULL);
ALTER TABLE tasker_steps
    DROP CONSTRAINT tasker_steps_status_check,
    ADD CONSTRAINT tasker_steps_status_check CHECK (status::tasker_step_status IS NOT NULL),
    DROP CONSTRAINT tasker_steps_backoff_check,
    ADD CONSTRAINT tasker_steps_backoff_check CHECK (backoff::tasker_backoff IS NOT NULL);
ALTER TABLE tasker_events
    DROP CONSTRAINT tasker_events_event_name_check,
    ADD CONSTRAINT tasker_events_event_name_check CHECK (event_name::tasker_event_name IS NOT NULL);
