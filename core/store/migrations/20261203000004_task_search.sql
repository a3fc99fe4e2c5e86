-- The dashboard finds a task by its correlation id, links a task to the tasks it delegated
-- (theirs name it as parent) and filters by creation time. Creation time follows insertion
-- order, so a BRIN index answers ranges for a few pages of index per million rows.
CREATE INDEX tasker_tasks_by_correlation ON tasker_tasks (correlation_id);
CREATE INDEX tasker_tasks_by_parent ON tasker_tasks (parent_correlation_id)
    WHERE parent_correlation_id IS NOT NULL;
CREATE INDEX tasker_tasks_by_created ON tasker_tasks USING brin (created_at);
