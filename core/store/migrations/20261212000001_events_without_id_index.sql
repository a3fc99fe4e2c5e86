-- Events lose the index on their id alone. Every event row put an entry into three B-trees
-- (id, the stream's (xid, id) and the task); the id alone was read by two statements only,
-- neither on the hot path: a stream's resume after an event id (`Engine::event_position`) and
-- retention's delete. A 4-step task writes ten events, so that index took ten of the ~164 WAL
-- records a task wrote in the soak and 225 bytes of its ~6 KB (22.5 bytes an entry).
--
-- The resume now finds its row through the BRIN index on `occurred_at` (an event id carries
-- the millisecond the event occurred, and its row id), and retention deletes rows by their
-- physical position. `autosummarize` summarises each block range as soon as it is full, so that
-- the BRIN index narrows a lookup to a few ranges instead of every range written since the last
-- vacuum. Like transitions, events have no primary key: nothing reads them by id alone, and the
-- id stays unique (a sequence) and ordered within a transaction.
ALTER TABLE tasker_events DROP CONSTRAINT tasker_events_pkey;
ALTER INDEX tasker_events_by_time SET (autosummarize = on);
