-- Per-step writes update rows in place (HOT: no index entry is written) when no indexed column
-- changes and the page has room for the new version.
--
-- A result touches its task's `updated_at`, which the recovery sweep's partial index keyed:
-- every step then wrote an entry into each of the task's six indexes. The index is now keyed
-- by creation time; the sweep filters and orders its (few) active tasks by `updated_at`.
DROP INDEX tasker_tasks_active;
CREATE INDEX tasker_tasks_active ON tasker_tasks (created_at)
    WHERE status IN ('pending','in_progress','waiting_for_retry');

-- Room on each page for the next versions of its rows: a step row is written three more times
-- after its insert (enqueued, in_progress, its result) and its task once per step. Status is not
-- indexed on steps, so each of those writes can stay on its page.
ALTER TABLE tasker_tasks SET (fillfactor = 70);
ALTER TABLE tasker_steps SET (fillfactor = 50);
