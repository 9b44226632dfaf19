//! Settings, resolved once per command (uv's `Settings::resolve`, ripgrep's low → high
//! arguments): the command line as clap parsed it (`cli::args`), the config's `[builder]` and
//! the environment come in, what each stage needs comes out. The environment is read here,
//! once, into [`Environment`]; nothing below reads it or the command line itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::args::{Allow, MergeArgs, RunArgs, Target};
use crate::config::{self, DEFAULT_REGISTRY_STALL, DEFAULT_REGISTRY_TIMEOUT};
use crate::confine::Allowed;
use crate::error::{ConfigError, Error, ErrorKind};
use crate::exec;
use crate::plan::{Plan, Selection};
use crate::platform::Platform;
use crate::progress;
use crate::supervise::Limits;

/// What this process's environment says, read once, at the start.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `MAB_PODMAN`, split like a shell would, so it can carry global options such as
    /// `--remote --connection ci`; over `[builder] podman`.
    pub podman: Option<Vec<String>>,
    /// `CONTAINERS_REGISTRIES_CONF`: podman reads it, skopeo 1.9 does not, so mab passes it on.
    pub registries_conf: Option<OsString>,
    /// `SOURCE_DATE_EPOCH`, for `[builder] reproducible`.
    pub source_date_epoch: Option<String>,
    /// `NO_COLOR` is set: errors are drawn without colour.
    pub no_color: bool,
    /// The home directory: where `--allow fs.read=~/...` points.
    pub home: Option<PathBuf>,
    /// This program, which `mab run` starts again as its reaper (`mab __reap`).
    pub exe: Option<PathBuf>,
    /// The processors mab may use: `mab run --jobs`'s default.
    pub cpus: usize,
}

impl Environment {
    /// This process's environment.
    pub fn from_process() -> Self {
        Self {
            podman: std::env::var("MAB_PODMAN")
                .ok()
                .and_then(|v| shlex::split(&v))
                .filter(|v| !v.is_empty()),
            registries_conf: std::env::var_os("CONTAINERS_REGISTRIES_CONF"),
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
            no_color: std::env::var_os("NO_COLOR").is_some(),
            home: std::env::home_dir(),
            exe: std::env::current_exe().ok(),
            cpus: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

/// What the trusted side tells the config loader: the paths the command line lets the config
/// read outside its repository, and the environment.
#[derive(Debug, Clone, Default)]
pub struct Trusted {
    pub allowed: Allowed,
    pub env: Environment,
}

/// How a run runs, as the config's `[builder]` says: a build's time limit and a registry
/// command's retries, deadline and stall, if set. Not part of the plan, which describes the
/// build: resolved once from the config here, read by the run's settings ([`RunSettings`],
/// [`MergeSettings`], [`registry`]), and written into the plan's JSON beside the plan, where
/// the format has always shown them (`output::json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct BuilderSettings {
    /// Seconds a build may run (`[builder] timeout`), if limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Retries of a push or registry read after a transient failure, and of a build that
    /// lost a layer to another podman process (`[builder] retries`).
    pub retries: u32,
    /// Seconds a registry command may run, and may move no data (`[builder] registry_timeout`,
    /// `registry_stall`), if the config sets them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_timeout_secs: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_stall_secs: Option<u64>,
}

impl BuilderSettings {
    pub fn resolve(builder: &config::Builder) -> Self {
        let config::Builder {
            oci_labels: _,
            reproducible: _,
            timeout_secs,
            retries,
            registry_timeout_secs,
            registry_stall_secs,
        } = builder;
        Self {
            timeout_secs: *timeout_secs,
            retries: *retries,
            registry_timeout_secs: *registry_timeout_secs,
            registry_stall_secs: *registry_stall_secs,
        }
    }
}

/// A plan, and how its config says a run of it runs.
pub struct Planned {
    pub plan: Plan,
    pub builder: BuilderSettings,
}

/// What to plan (`mab plan`, `mab run`): the config's location, the `--var`s, the selection,
/// and what the config may read.
pub struct TargetSettings {
    pub location: config::Location,
    pub vars: Vec<(String, String)>,
    pub selection: Selection,
    pub trusted: Trusted,
}

impl TargetSettings {
    /// `no_push`: for `mab run --no-push`, whose builds push no cache layers either.
    pub(crate) fn resolve(target: Target, env: &Environment, no_push: bool) -> Result<Self, Error> {
        let Target {
            images,
            file,
            all,
            changed_since,
            platforms,
            vars,
            allow,
        } = target;
        let cwd = current_dir()?;
        let allowed = allowed(allow, &cwd, env);
        let location = config::Location::find(&cwd, file.as_deref(), all)?;
        let changes = changed_since
            .as_deref()
            .map(|rev| crate::changes::Changes::since(location.dir(), rev))
            .transpose()?;
        Ok(Self {
            location,
            vars,
            selection: Selection {
                patterns: images,
                platforms,
                changes,
                no_push,
            },
            trusted: Trusted {
                allowed,
                env: env.clone(),
            },
        })
    }

    /// Loads and plans the target.
    pub fn plan(&self) -> Result<Planned, ConfigError> {
        let Trusted { allowed, env } = &self.trusted;
        crate::planned_in(
            &self.location,
            &self.vars,
            &self.selection,
            env.clone(),
            allowed,
        )
    }
}

/// The paths `--allow` names, resolved against `cwd` and the home directory, before the config
/// is loaded.
pub(crate) fn allowed(allow: Allow, cwd: &Path, env: &Environment) -> Allowed {
    let Allow { entries } = allow;
    Allowed::resolve(&entries, cwd, env.home.as_deref())
}

pub(crate) fn current_dir() -> Result<PathBuf, ConfigError> {
    std::env::current_dir().map_err(|e| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot read the current directory: {e}"),
        )
    })
}

/// How `mab run` runs: from its flags, the config's `[builder]` and the environment.
pub struct RunSettings {
    pub exec: exec::Options,
    /// The files the run writes besides its summary.
    pub outputs: Outputs,
    /// A split runner's digests file, for `mab merge`.
    pub digests_out: Option<PathBuf>,
    /// The summary's table of every build and list (not with `-q`: failures and the verdict
    /// only).
    pub table: bool,
}

impl RunSettings {
    /// The run's flags that contradict its target, checked before anything is planned.
    pub(crate) fn check_target(target: &Target, run: &RunArgs) -> Result<(), ConfigError> {
        if !target.platforms.is_empty() && !run.no_push && run.digests_out.is_none() {
            // A list of fewer platforms pushed to a tag would replace the full one.
            return Err(ConfigError::new(
                ErrorKind::Selection,
                "--platform builds only some platforms: pushing their manifest lists would replace the full lists under the same tags",
            )
            .with_help("add --no-push to build and assemble them locally, or --digests-out FILE to be one runner of a split build that `mab merge` joins"));
        }
        Ok(())
    }

    /// `split`: a split runner's platforms (`--digests-out`), whose plan has every platform.
    pub(crate) fn resolve(
        run: RunArgs,
        planned: &Planned,
        env: &Environment,
        split: Option<Vec<Platform>>,
    ) -> Result<Self, ConfigError> {
        let Planned { plan, builder } = planned;
        let RunArgs {
            jobs,
            keep_going,
            atomic,
            no_push,
            progress,
            quiet,
            verbose,
            report,
            junit,
            trace,
            digests_out,
            rebuild,
            timeout,
            registry_timeout,
        } = run;
        if no_push && let Some(remote) = plan.builds.iter().find(|b| b.publish.is_some()) {
            // A list is assembled on this machine; another node's image gets here by the
            // registry.
            return Err(ConfigError::new(
                ErrorKind::Selection,
                format!(
                    "--no-push, but {} builds on node {}: its image reaches this machine only through the registry",
                    remote.id,
                    remote.node.as_deref().unwrap_or("?")
                ),
            )
            .with_help("push (drop --no-push), or select the platforms this machine builds with --platform"));
        }
        let exec = exec::Options {
            jobs: jobs.unwrap_or(env.cpus),
            keep_going,
            atomic,
            push: !no_push,
            progress: if quiet {
                progress::Mode::Quiet
            } else {
                progress
            },
            verbose,
            timeout: timeout.or(builder.timeout_secs.map(Duration::from_secs)),
            registry: registry(builder, registry_timeout),
            skip_published: !rebuild,
            reaper: env
                .exe
                .as_ref()
                .map(|exe| vec![exe.to_string_lossy().into_owned(), "__reap".into()]),
            // The key of `[signing]`, opened before anything runs (a run that pushes nothing
            // signs nothing): a missing key or a wrong `COSIGN_PASSWORD` is the config's error.
            signer: match &plan.signing {
                Some(signing) if !no_push => Some(std::sync::Arc::new(signing.open_with_env()?)),
                _ => None,
            },
            split,
        };
        Ok(Self {
            exec,
            outputs: Outputs {
                report,
                junit,
                trace,
            },
            digests_out,
            table: !quiet,
        })
    }
}

/// The files a run or merge writes besides its summary (and its timeline.svg).
pub struct Outputs {
    /// The JSON report (in a CI, the run directory's `report.json` when not given).
    pub report: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// Where the time went, as Chrome trace events.
    pub trace: Option<PathBuf>,
}

/// How `mab merge` runs: from its flags and the config's `[builder]`.
pub struct MergeSettings {
    pub exec: exec::Options,
    pub outputs: Outputs,
}

impl MergeSettings {
    pub(crate) fn resolve(
        args: MergeArgs,
        planned: &Planned,
        env: &Environment,
    ) -> Result<Self, ConfigError> {
        let Planned { plan, builder } = planned;
        let MergeArgs {
            jobs,
            progress,
            verbose,
            report,
            junit,
            registry_timeout,
        } = args;
        let exec = exec::Options {
            jobs,
            keep_going: true,
            atomic: false,
            push: true,
            progress,
            verbose,
            timeout: None,
            registry: registry(builder, registry_timeout),
            skip_published: true,
            reaper: env
                .exe
                .as_ref()
                .map(|exe| vec![exe.to_string_lossy().into_owned(), "__reap".into()]),
            // The merge publishes the lists: it signs them as a run would.
            signer: match &plan.signing {
                Some(signing) => Some(std::sync::Arc::new(signing.open_with_env()?)),
                None => None,
            },
            split: None,
        };
        Ok(Self {
            exec,
            outputs: Outputs {
                report,
                junit,
                trace: None,
            },
        })
    }
}

/// How commands that talk to a registry run: `timeout` (`mab run --registry-timeout`) over the
/// config's `[builder] registry_timeout`, its `registry_stall` and `retries`, else their
/// defaults.
pub fn registry(builder: &BuilderSettings, timeout: Option<Duration>) -> exec::Registry {
    exec::Registry {
        limits: Limits {
            deadline: Some(
                timeout
                    .or(builder.registry_timeout_secs.map(Duration::from_secs))
                    .unwrap_or(DEFAULT_REGISTRY_TIMEOUT),
            ),
            stall: Some(
                builder
                    .registry_stall_secs
                    .map_or(DEFAULT_REGISTRY_STALL, Duration::from_secs),
            ),
        },
        retries: builder.retries,
    }
}
