//! mab: multi-arch image builds with podman.
//!
//! Data flows one way: [`config`] loads and checks `multiarch.toml`, [`matrix`] expands images
//! into instances and renders their templates, [`plan`] turns instances into a DAG of
//! per-platform builds and per-instance manifest lists, [`output`] prints it.

pub mod attach;
pub mod changes;
pub mod ci;
pub mod cli;
pub mod config;
pub mod confine;
pub mod content;
pub mod digests_file;
pub mod dockerfile;
pub mod doctor;
pub mod error;
pub mod exec;
pub mod external;
pub mod git;
pub mod init;
pub mod inputs;
pub mod matrix;
pub mod native;
pub mod output;
mod par;
pub mod plan;
pub mod platform;
pub mod podman_features;
pub mod process_ledger;
pub mod progress;
pub mod provenance;
pub mod reference;
pub mod sbom;
pub mod settings;
pub mod sign;
pub mod state;
pub mod supervise;
pub mod template;
pub mod timeline;
mod traffic;

use std::path::Path;

pub use error::{ConfigError, EXIT_CODES, Error, ErrorKind};
pub use plan::{Plan, Selection};

/// Loads the config at `path`, with `vars` overriding its `[vars]`, and plans `selection`.
pub fn plan_file(
    path: &Path,
    vars: &[(String, String)],
    selection: &Selection,
) -> Result<Plan, ConfigError> {
    plan_at(&config::Location::File(path.to_path_buf()), vars, selection)
}

/// Loads the config `location` names, with `vars` overriding `[vars]`, and plans `selection`,
/// in this process's environment, reading nothing outside the config's repository.
pub fn plan_at(
    location: &config::Location,
    vars: &[(String, String)],
    selection: &Selection,
) -> Result<Plan, ConfigError> {
    plan_in(
        location,
        vars,
        selection,
        settings::Environment::from_process(),
        &confine::Allowed::default(),
    )
}

/// [`plan_at`] in the environment `env` (read once by the caller), the config allowed to read
/// what `allowed` names outside its repository.
pub fn plan_in(
    location: &config::Location,
    vars: &[(String, String)],
    selection: &Selection,
    env: settings::Environment,
    allowed: &confine::Allowed,
) -> Result<Plan, ConfigError> {
    planned_in(location, vars, selection, env, allowed).map(|p| p.plan)
}

/// [`plan_in`], with how the config's `[builder]` says a run of the plan runs.
pub fn planned_in(
    location: &config::Location,
    vars: &[(String, String)],
    selection: &Selection,
    env: settings::Environment,
    allowed: &confine::Allowed,
) -> Result<settings::Planned, ConfigError> {
    let trusted = settings::Trusted {
        allowed: allowed.clone(),
        env,
    };
    let config = location.load_in(vars, &trusted)?;
    let instances = matrix::expand(&config)?;
    Ok(settings::Planned {
        plan: plan::plan(&config, &instances, selection)?,
        builder: settings::BuilderSettings::resolve(&config.builder),
    })
}
