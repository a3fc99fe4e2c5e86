-- The claim statement walks a step's upstream edges within its task; scoping that walk by task
-- keeps it on an index however large the edge table grows.
CREATE INDEX tasker_step_edges_by_task ON tasker_step_edges (task_uuid, to_step_uuid);
