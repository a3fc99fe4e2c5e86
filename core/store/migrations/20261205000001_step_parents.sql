-- A step's dependencies are fixed when its task is created. Every hot statement read them through
-- tasker_step_edges: each outcome's reconciliation (the parents of every step of the task), each
-- claim (the walk to the upstream results) and the task's view (the dependency names, one join
-- per step). They now sit in the step's own row, written once by the creating statement:
--   parents       the uuids of the steps it depends on, in the template's step order;
--   dependencies  the names of those steps, in the same order.
-- Both are never updated, so per-step writes stay HOT, and the edge table's three indexes are no
-- longer written at creation.
ALTER TABLE tasker_steps
    ADD COLUMN parents      UUID[] NOT NULL DEFAULT '{}',
    ADD COLUMN dependencies TEXT[] NOT NULL DEFAULT '{}';

UPDATE tasker_steps s
   SET parents = d.parents, dependencies = d.dependencies
  FROM (SELECT e.to_step_uuid,
               array_agg(p.step_uuid ORDER BY p.position) AS parents,
               array_agg(p.name ORDER BY p.position) AS dependencies
          FROM tasker_step_edges e
          JOIN tasker_steps p ON p.step_uuid = e.from_step_uuid
         GROUP BY e.to_step_uuid) d
 WHERE s.step_uuid = d.to_step_uuid;

DROP TABLE tasker_step_edges;
