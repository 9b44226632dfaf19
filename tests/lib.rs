//! The integration tests: one binary (just's and nextest's layout), so that a change under src/
//! or tests/common links one test executable, not one per file. A module per area; the shared
//! set-ups live in `common`. The property tests are their own binary (tests/properties.rs): they
//! are heavy and need no project on disk.

mod common;

mod ci;
mod confine;
mod content_plan;
mod corpus;
mod docs;
mod doctor;
mod doctor_nodes;
mod e2e;
mod e2e_attest;
mod e2e_ci;
mod e2e_confine;
mod e2e_consumer;
mod e2e_content;
mod e2e_deadlines;
mod e2e_external;
mod e2e_features;
mod e2e_incremental;
mod e2e_nodes;
mod e2e_podman;
mod e2e_referrers;
mod e2e_repos;
mod e2e_sign;
mod e2e_split;
mod e2e_state;
mod e2e_tags;
mod errors;
mod exit_codes;
mod external;
mod incremental;
mod init;
mod monorepo;
mod plan;
mod plan_shapes;
mod run;
mod schema;
mod sign;
mod state;
mod timing;
