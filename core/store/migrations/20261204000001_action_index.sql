-- Every view of a task lists its operator actions (a cancel: the task's own move to
-- 'cancelled'; a retry: a step's move marked manual_retry), and the statement that ends a task
-- builds its view: the few action rows get an index of their own instead of a read of every
-- transition of the task. The predicate is the one the engine's query states
-- (tasker-engine's actor::task_actions_json), so the planner can use the index.
CREATE INDEX tasker_transitions_actions ON tasker_transitions (task_uuid, id)
    WHERE (step_uuid IS NULL AND to_state = 'cancelled') OR detail->>'reason' = 'manual_retry';
