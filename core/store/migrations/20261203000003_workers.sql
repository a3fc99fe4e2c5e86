-- Worker processes as they record themselves: what serves each namespace, in which language,
-- where, how busy, and when each last answered (a heartbeat every few seconds).
CREATE TABLE tasker_workers (
    worker_id     UUID PRIMARY KEY,
    language      TEXT NOT NULL,
    hostname      TEXT NOT NULL,
    pid           INT NOT NULL,
    concurrency   INT NOT NULL,
    namespaces    TEXT[] NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at    TIMESTAMPTZ,
    in_flight     INT NOT NULL DEFAULT 0,
    completed     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tasker_workers_namespaces ON tasker_workers USING GIN (namespaces);
