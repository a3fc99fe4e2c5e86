//! The engine's own tests: each rule of spec §0.9 and each invariant of ARCHITECTURE.md, run
//! against a real PostgreSQL (the dev db, or `DATABASE_URL`) with a fresh, migrated database per
//! test, and no server or worker process: the test plays the worker, claiming and completing
//! steps through the engine's API.

mod actors;
mod creation;
mod dashboard;
mod errors;
mod events;
mod invariants;
mod metrics;
mod notify;
mod operator;
mod queues;
mod retry;
mod support;
mod tokens;
mod workers;
