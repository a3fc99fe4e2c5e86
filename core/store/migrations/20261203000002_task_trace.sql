-- The W3C trace context a task was created in (the API request's span, the client's own
-- `traceparent`, or the step attempt that delegated it): every attempt of its steps continues
-- that trace.
ALTER TABLE tasker_tasks ADD COLUMN traceparent TEXT, ADD COLUMN tracestate TEXT;
