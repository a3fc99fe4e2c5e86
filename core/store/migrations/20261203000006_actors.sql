-- Who did what. A task records who created it (an API token, or the task whose handler
-- delegated it); every audit row records the actor of the action that wrote it. The engine
-- names the actor once per operator transaction (set_config('tasker.actor', ..., true)), so the
-- state writes deep inside an action need not carry it; rows written by workers and the sweep
-- have none. An empty setting (left behind on a pooled connection) is no actor.
ALTER TABLE tasker_tasks ADD COLUMN created_by TEXT;
ALTER TABLE tasker_transitions
    ADD COLUMN actor TEXT DEFAULT NULLIF(current_setting('tasker.actor', true), '');
