-- Tasker core schema. Every state change of a task or step is also appended to
-- tasker_transitions, which accepts no UPDATE or DELETE.

CREATE TABLE tasker_namespaces (
    name        TEXT PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    queue_name  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE tasker_templates (
    namespace      TEXT NOT NULL REFERENCES tasker_namespaces(name),
    name           TEXT NOT NULL,
    version        TEXT NOT NULL,
    version_major  BIGINT NOT NULL,
    version_minor  BIGINT NOT NULL,
    version_patch  BIGINT NOT NULL,
    definition     JSONB NOT NULL,
    content_hash   TEXT NOT NULL,
    registered_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, name, version)
);
CREATE INDEX tasker_templates_by_semver
    ON tasker_templates (namespace, name, version_major DESC, version_minor DESC, version_patch DESC);

CREATE TABLE tasker_tasks (
    task_uuid              UUID PRIMARY KEY,
    namespace              TEXT NOT NULL,
    name                   TEXT NOT NULL,
    version                TEXT NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN
        ('pending','in_progress','waiting_for_retry','complete','error','cancelled','resolved_manually')),
    correlation_id         TEXT NOT NULL,
    parent_correlation_id  TEXT,
    context                JSONB NOT NULL,
    -- descriptive request fields (initiator, source_system, reason, tags, priority)
    annotations            JSONB NOT NULL DEFAULT '{}',
    idempotency_key        TEXT UNIQUE,
    request_hash           TEXT,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at           TIMESTAMPTZ,
    FOREIGN KEY (namespace, name, version) REFERENCES tasker_templates(namespace, name, version)
);
CREATE INDEX tasker_tasks_active ON tasker_tasks (updated_at)
    WHERE status IN ('pending','in_progress','waiting_for_retry');
CREATE INDEX tasker_tasks_listing ON tasker_tasks (namespace, name, status, task_uuid DESC);

CREATE TABLE tasker_steps (
    step_uuid        UUID PRIMARY KEY,
    task_uuid        UUID NOT NULL REFERENCES tasker_tasks(task_uuid),
    name             TEXT NOT NULL,
    position         INT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
        ('pending','enqueued','in_progress','waiting_for_retry','complete','error','cancelled','resolved_manually')),
    callable         TEXT NOT NULL,
    initialization   JSONB NOT NULL DEFAULT '{}',
    retryable        BOOLEAN NOT NULL,
    max_attempts     INT NOT NULL CHECK (max_attempts >= 1),
    backoff          TEXT NOT NULL CHECK (backoff IN ('exponential','linear','none')),
    backoff_base_ms  BIGINT NOT NULL,
    max_backoff_ms   BIGINT NOT NULL,
    timeout_seconds  INT NOT NULL,
    attempts         INT NOT NULL DEFAULT 0,
    -- the PGMQ message currently carrying this step, and the delivery that claimed it
    msg_id           BIGINT,
    claim_read_ct    INT,
    result           JSONB,
    metadata         JSONB,
    error            JSONB,
    started_at       TIMESTAMPTZ,
    completed_at     TIMESTAMPTZ,
    next_retry_at    TIMESTAMPTZ,
    UNIQUE (task_uuid, name)
);
CREATE INDEX tasker_steps_by_task ON tasker_steps (task_uuid, position);

CREATE TABLE tasker_step_edges (
    task_uuid       UUID NOT NULL REFERENCES tasker_tasks(task_uuid),
    from_step_uuid  UUID NOT NULL REFERENCES tasker_steps(step_uuid),
    to_step_uuid    UUID NOT NULL REFERENCES tasker_steps(step_uuid),
    PRIMARY KEY (to_step_uuid, from_step_uuid)
);
CREATE INDEX tasker_step_edges_by_from ON tasker_step_edges (from_step_uuid);

CREATE TABLE tasker_transitions (
    id          BIGSERIAL PRIMARY KEY,
    task_uuid   UUID NOT NULL,
    step_uuid   UUID,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    attempt     INT,
    detail      JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX tasker_transitions_by_task ON tasker_transitions (task_uuid, id);

CREATE FUNCTION tasker_transitions_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tasker_transitions is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tasker_transitions_no_update_or_delete
    BEFORE UPDATE OR DELETE ON tasker_transitions
    FOR EACH ROW EXECUTE FUNCTION tasker_transitions_append_only();
