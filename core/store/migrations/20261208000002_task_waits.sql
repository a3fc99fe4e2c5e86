-- The tasks some client waits for (GET /v1/tasks/{uuid}?wait=): the notification of such a
-- task's end carries its view, so that the waiting request answers without reading it; every
-- other task's carries its uuid alone, and the end statement skips building a view nobody reads.
-- The server marks a task here before each read of a wait; the end statement takes the mark
-- away, and the server's sweep drops marks older than a minute (waits that timed out).
-- Unlogged: a mark only saves a read, so it costs no WAL, and a crash that empties the table
-- only makes the waits of that moment read the task after its end.
CREATE UNLOGGED TABLE tasker_task_waits (
    task_uuid uuid PRIMARY KEY,
    since timestamptz NOT NULL DEFAULT now()
);
