//! The command line: argument parsing and rendering of results and errors. Everything it does is
//! a library call; this is the only place that prints or picks exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use miette::{GraphicalReportHandler, GraphicalTheme};

use anyhow::Context;

use crate::config::{self, display_path};
use crate::error::{ConfigError, Error, ErrorKind};
use crate::output;
use crate::plan::Selection;
use crate::platform::Platform;
use crate::settings::Environment;
use crate::{doctor, exec, progress};

#[derive(Debug, Parser)]
#[command(
    name = "mab",
    version,
    about = "Multi-arch image builds with podman: plan, build, publish manifest lists"
)]
pub struct Cli {
    /// Speak to a CI: GitHub Actions (job summary, annotations, step outputs, log groups) or
    /// GitLab CI (log sections); auto: by `GITHUB_ACTIONS=true` / `GITLAB_CI=true`.
    #[arg(long, global = true, value_enum, default_value_t = crate::ci::CiArg::Auto)]
    ci: crate::ci::CiArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show every build and manifest list `mab run` would make, without running anything.
    Plan {
        #[command(flatten)]
        target: Target,
        /// Output format: text for people, json for tools, dot for Graphviz.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Read the registry and leave out what a run would not build: the images whose
        /// inputs (files, Dockerfile, args, base image digests) are published already.
        #[arg(long)]
        check_registry: bool,
    },
    /// Build every image of the plan for every platform and publish one manifest list per tag.
    Run {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Join the images split runs pushed (`mab run --platform P --digests-out FILE`, one per
    /// runner) into the manifest lists, and publish each to every tag; nothing is pushed
    /// unless every platform of every list is in some FILE.
    Merge {
        /// The digests files of the runners.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The config file (default: multiarch.toml here or in the nearest parent directory).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Every multiarch.toml under this directory, as one plan (as the runners had it).
        #[arg(long, conflicts_with = "file")]
        all: bool,
        /// Override a `[vars]` entry (repeatable), as the runners did.
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        #[command(flatten)]
        allow: Allow,
        #[command(flatten)]
        out: MergeArgs,
    },
    /// Print the JSON schema of multiarch.toml.
    Schema,
    /// Write a starter multiarch.toml next to a Dockerfile (never over an existing one).
    Init {
        /// The Dockerfile (default: ./Dockerfile).
        #[arg(default_value = "Dockerfile")]
        dockerfile: PathBuf,
    },
    /// Print a shell completion script: `mab completions bash > /etc/bash_completion.d/mab`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print mab's man page (roff): `mab man > /usr/local/share/man/man1/mab.1`.
    Man,
    /// Check this machine for what would stop a run (and the config's platforms and
    /// registries, if there is one), with the fix for each problem.
    Doctor {
        /// The config file (default: multiarch.toml here or in the nearest parent, if any).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        allow: Allow,
    },
    /// Internal: the reaper `mab run` starts, which stops the run's commands if mab dies.
    #[command(name = "__reap", hide = true)]
    Reap,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Builds at once (default: the number of CPUs); as many manifest list jobs may run beside
    /// them, as they mostly wait on the registry.
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// After a failure, go on with everything that does not depend on it.
    #[arg(long)]
    keep_going: bool,
    /// Push no tag anywhere until every build of the run has succeeded; if a publication then
    /// fails (or the run is interrupted), put every tag the run moved back to what it held.
    #[arg(long)]
    atomic: bool,
    /// Build and assemble local manifest lists, push nothing.
    #[arg(long)]
    no_push: bool,
    /// Progress display: bars on a terminal, plain lines elsewhere (auto), or either always.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto)]
    progress: progress::Mode,
    /// Print only failures and the final verdict (same as `--progress quiet`).
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Show each command as it starts.
    #[arg(short, long)]
    verbose: bool,
    /// Write a JSON report of the run (image ids, digests, tags pushed) to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per build, list push and tag verification) to
    /// FILE, for CI test report views.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write where the time went as Chrome trace-event JSON to FILE (open it in
    /// chrome://tracing or https://ui.perfetto.dev); every run also draws timeline.svg in its
    /// run directory.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Be one runner of a split build: build the `--platform`s only, push each image by
    /// digest (no list, no release tag) and write what was pushed to FILE, for `mab merge`.
    #[arg(long, value_name = "FILE", requires = "platforms", conflicts_with_all = ["no_push", "atomic"])]
    digests_out: Option<PathBuf>,
    /// Build everything, even images whose inputs the registry already holds.
    #[arg(long)]
    rebuild: bool,
    /// A build running longer fails, e.g. `30m` (overrides `[builder] timeout`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// A command that talks to a registry running longer is stopped and retried, e.g. `30m`
    /// (overrides `[builder] registry_timeout`; default 15m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    registry_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// Lists published at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4)]
    jobs: usize,
    /// Progress display: bars on a terminal, plain lines elsewhere (auto), or either always.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto)]
    progress: progress::Mode,
    /// Show each command as it starts.
    #[arg(short, long)]
    verbose: bool,
    /// Write a JSON report of the merge (lists, tags, digests) to FILE.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per list push and tag verification) to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// A command that talks to a registry running longer is stopped and retried, e.g. `30m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    registry_timeout: Option<std::time::Duration>,
}

/// What to work on: the config, the images and platforms in it, variable overrides.
#[derive(Debug, Args)]
struct Target {
    /// Image names, instance names, qualified names (`services/api:api`) or globs (`api-*`);
    /// their dependencies come along (not with --changed-since).
    images: Vec<String>,
    /// The config file (default: multiarch.toml here or in the nearest parent directory; else,
    /// in a git work tree, every multiarch.toml below).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Every multiarch.toml under this directory, as one plan (skipping .git, target,
    /// node_modules, hidden directories and what .gitignore/.ignore exclude).
    #[arg(long, conflicts_with = "file")]
    all: bool,
    /// Only images whose files changed since this git revision (committed or not), and the
    /// images that depend on them.
    #[arg(long, value_name = "REV")]
    changed_since: Option<String>,
    /// Only these platforms (repeatable), e.g. `--platform linux/arm64`.
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = parse_platform)]
    platforms: Vec<Platform>,
    /// Override a `[vars]` entry (repeatable), e.g. `--var version=1.5.0`.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    #[command(flatten)]
    allow: Allow,
}

/// What the config may read outside its repository: only the command line says.
#[derive(Debug, Args)]
struct Allow {
    /// Let the config read PATH and everything below it, outside its repository (repeatable),
    /// e.g. `--allow fs.read=$HOME/.npmrc` for a secret file.
    #[arg(long = "allow", value_name = "fs.read=PATH")]
    entries: Vec<crate::confine::Entitlement>,
}

impl Allow {
    /// The allowed paths, resolved once, before the config is loaded.
    fn resolve(&self, cwd: &Path) -> crate::confine::Allowed {
        crate::confine::Allowed::resolve(&self.entries, cwd, std::env::home_dir().as_deref())
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Dot,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse::<Platform>().map_err(|e| match e.suggestion() {
        Some(hint) => format!("{e} (did you mean `{hint}`?)"),
        None => e.to_string(),
    })
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

impl Target {
    /// Loads and plans what the command line names.
    fn plan(&self, env: &Environment) -> Result<crate::Plan, Error> {
        self.plan_for(env, &self.platforms)
    }

    /// Loads and plans what the command line names, for `platforms` (empty: all).
    fn plan_for(&self, env: &Environment, platforms: &[Platform]) -> Result<crate::Plan, Error> {
        let cwd = current_dir()?;
        let allowed = self.allow.resolve(&cwd);
        let location = config::Location::find(&cwd, self.file.as_deref(), self.all)?;
        let changes = self
            .changed_since
            .as_deref()
            .map(|rev| crate::changes::Changes::since(location.dir(), rev))
            .transpose()?;
        let selection = Selection {
            patterns: self.images.clone(),
            platforms: platforms.to_vec(),
            changes,
        };
        Ok(crate::plan_in(
            &location,
            &self.vars,
            &selection,
            env.clone(),
            &allowed,
        )?)
    }
}

fn report(err: &ConfigError) -> String {
    let stderr = std::io::stderr();
    let color = stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let mut out = String::new();
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_links(false)
        .with_width(100);
    if handler.render_report(&mut out, err).is_err() {
        out = format!("error: {err}");
    }
    out
}

/// Writes to stdout through a buffer; a closed pipe (`mab plan | head`) is not an error.
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<(), Error> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow::Error::new(e)
            .context("cannot write the output")
            .into()),
        _ => Ok(()),
    }
}

fn run(cli: Cli, ci: &crate::ci::Ci) -> Result<(), Error> {
    // The settings step: the environment is read here, once, and handed down.
    let env = Environment::from_process();
    match cli.command {
        Command::Init { dockerfile } => init(&dockerfile),
        Command::Completions { shell } => write_stdout(|out| {
            clap_complete::generate(shell, &mut Cli::command(), "mab", out);
            Ok(())
        }),
        Command::Man => write_stdout(|out| clap_mangen::Man::new(Cli::command()).render(out)),
        Command::Doctor { file, allow } => doctor(file, &allow, &env),
        Command::Reap => {
            Ok(crate::supervise::reap(exec::KILL_GRACE)
                .context("the reaper lost its pipe to mab")?)
        }
        Command::Schema => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &config::schema())?;
            writeln!(out)
        }),
        Command::Run { target, run } => run_plan(&target, &run, &env, ci),
        Command::Merge {
            files,
            file,
            all,
            vars,
            allow,
            out,
        } => {
            let target = Target {
                images: Vec::new(),
                file,
                all,
                changed_since: None,
                platforms: Vec::new(),
                vars,
                allow,
            };
            merge(&target, &files, &out, &env, ci)
        }
        Command::Plan {
            target,
            format,
            check_registry,
        } => {
            let mut plan = target.plan(&env)?;
            if check_registry {
                plan = exec::preview(&plan).map_err(|e| {
                    crate::state::run_error(e, || {
                        format!("cannot check the registry from {}", plan.workdir.display())
                    })
                })?;
            }
            eprint!("{}", output::warnings(&plan));
            write_stdout(|out| match format {
                Format::Text => output::text(&plan, &display_path(&plan.workdir), out),
                Format::Json => output::json(&plan, out),
                Format::Dot => output::dot(&plan, out),
            })
        }
    }
}

fn current_dir() -> Result<PathBuf, ConfigError> {
    std::env::current_dir().map_err(|e| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot read the current directory: {e}"),
        )
    })
}

/// `mab init [DOCKERFILE]`: `mab init services/api/Dockerfile` writes services/api/multiarch.toml.
fn init(dockerfile: &Path) -> Result<(), Error> {
    let cwd = current_dir()?;
    let dir = cwd.join(dockerfile.parent().unwrap_or(Path::new("")));
    let file = PathBuf::from(dockerfile.file_name().unwrap_or_default());
    let written = crate::init::init(&dir, &file)?;
    eprintln!("wrote {}", config::display_path(&written.config));
    if let Some(schema) = written.schema {
        eprintln!(
            "wrote {} (for editors; `mab schema` regenerates it)",
            config::display_path(&schema)
        );
    }
    Ok(())
}

/// `mab doctor`: the machine's checks, and the config's when there is one.
fn doctor(file: Option<PathBuf>, allow: &Allow, env: &Environment) -> Result<(), Error> {
    let cwd = current_dir()?;
    let allowed = allow.resolve(&cwd);
    // A config is optional here: the machine's checks stand without one.
    let plan = match config::Location::find(&cwd, file.as_deref(), false) {
        Ok(location) => Some(crate::plan_in(
            &location,
            &[],
            &Selection::default(),
            env.clone(),
            &allowed,
        )?),
        Err(_) => None,
    };
    let podman = match &plan {
        Some(p) => p.podman.clone(),
        None => env.podman.clone().unwrap_or_else(|| vec!["podman".into()]),
    };
    let checks = doctor::checks(&podman, plan.as_ref(), true);
    write_stdout(|out| out.write_all(doctor::render(&checks).as_bytes()))?;
    if doctor::blocking(&checks) {
        return Err(Error::Environment(
            "this machine cannot run the plan: fix the FAIL lines above".into(),
        ));
    }
    Ok(())
}

/// `mab run`: plan, check the machine, execute, report.
fn run_plan(
    target: &Target,
    run: &RunArgs,
    env: &Environment,
    ci: &crate::ci::Ci,
) -> Result<(), Error> {
    if !target.platforms.is_empty() && !run.no_push && run.digests_out.is_none() {
        // A list of fewer platforms pushed to a tag would replace the full one.
        return Err(ConfigError::new(
            ErrorKind::Selection,
            "--platform builds only some platforms: pushing their manifest lists would replace the full lists under the same tags",
        )
        .with_help("add --no-push to build and assemble them locally, or --digests-out FILE to be one runner of a split build that `mab merge` joins")
        .into());
    }
    // A split runner plans every platform: the registry check looks lists up by all their
    // builds' inputs, and the run keeps its own platforms' builds.
    let split = run.digests_out.as_ref().map(|_| target.platforms.clone());
    let plan = match &split {
        Some(_) => target.plan_for(env, &[])?,
        None => target.plan(env)?,
    };
    eprint!("{}", output::warnings(&plan));
    if run.no_push
        && let Some(remote) = plan.builds.iter().find(|b| b.publish.is_some())
    {
        // A list is assembled on this machine; another node's image gets here by the registry.
        return Err(ConfigError::new(
            ErrorKind::Selection,
            format!(
                "--no-push, but {} builds on node {}: its image reaches this machine only through the registry",
                remote.id,
                remote.node.as_deref().unwrap_or("?")
            ),
        )
        .with_help("push (drop --no-push), or select the platforms this machine builds with --platform")
        .into());
    }
    let jobs = run
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let opts = exec::Options {
        jobs,
        keep_going: run.keep_going,
        atomic: run.atomic,
        push: !run.no_push,
        progress: if run.quiet {
            progress::Mode::Quiet
        } else {
            run.progress
        },
        verbose: run.verbose,
        timeout: run
            .timeout
            .or(plan.timeout_secs.map(std::time::Duration::from_secs)),
        retries: plan.retries,
        registry: exec::registry_limits(&plan, run.registry_timeout),
        skip_published: !run.rebuild,
        reaper: std::env::current_exe()
            .ok()
            .map(|exe| vec![exe.to_string_lossy().into_owned(), "__reap".into()]),
        split: split.clone(),
    };
    // The machine is checked for what is left to build once the registry has said; podman's
    // own part of the checks needs no plan, so it runs while the registry is read.
    let probe = doctor::Probe::start(&plan.podman);
    let preflight = |work: &crate::Plan| {
        let checks = doctor::checks_on(probe.finish(), &work.podman, Some(work), false);
        if doctor::blocking(&checks) {
            let failed: Vec<doctor::Check> = checks
                .into_iter()
                .filter(|c| c.level == doctor::Level::Fail)
                .collect();
            eprint!("{}", doctor::render(&failed));
            return false;
        }
        true
    };
    let report = exec::run(&plan, &opts, preflight)
        .map_err(|e| {
            crate::state::run_error(e, || {
                format!("cannot prepare the run in {}", plan.workdir.display())
            })
        })?
        .ok_or_else(|| {
            Error::Environment(
                "mab run did not start: fix the above (`mab doctor` checks everything)".into(),
            )
        })?;
    let outputs = Outputs {
        report: run.report.as_deref(),
        junit: run.junit.as_deref(),
        trace: run.trace.as_deref(),
    };
    let timeline = outputs.write(ci, &report, &plan)?;
    if let (Some(file), Some(platforms)) = (&run.digests_out, &split) {
        let digests = exec::digests_file(&plan, &report, platforms);
        write_private(file, digests.to_json().as_bytes())
            .with_context(|| format!("cannot write the digests to {}", file.display()))?;
    }
    write_stdout(|out| {
        output::summary(&report, &plan, !run.quiet, out)?;
        writeln!(out, "{}", timeline.line())
    })?;
    match report.interrupted {
        Some(signal) => Err(Error::Interrupted(signal)),
        None if report.success => Ok(()),
        None => Err(Error::Failed("a build, push or verification failed".into())),
    }
}

/// `mab merge FILE...`: read the runners' files, join their images into the lists, report.
fn merge(
    target: &Target,
    files: &[PathBuf],
    args: &MergeArgs,
    env: &Environment,
    ci: &crate::ci::Ci,
) -> Result<(), Error> {
    let read: Vec<(PathBuf, crate::digests_file::DigestsFile)> = files
        .iter()
        .map(|f| crate::digests_file::DigestsFile::read(f).map(|d| (f.clone(), d)))
        .collect::<Result<_, String>>()
        .map_err(|e| ConfigError::new(ErrorKind::Selection, e))?;
    let plan = target.plan(env)?;
    eprint!("{}", output::warnings(&plan));
    let opts = exec::Options {
        jobs: args.jobs,
        keep_going: true,
        atomic: false,
        push: true,
        progress: args.progress,
        verbose: args.verbose,
        timeout: None,
        retries: plan.retries,
        registry: exec::registry_limits(&plan, args.registry_timeout),
        skip_published: true,
        reaper: std::env::current_exe()
            .ok()
            .map(|exe| vec![exe.to_string_lossy().into_owned(), "__reap".into()]),
        split: None,
    };
    let report = exec::merge(&plan, &read, &opts).map_err(|e| {
        crate::state::run_error(e, || {
            format!("cannot prepare the merge in {}", plan.workdir.display())
        })
    })?;
    let report = match report {
        Ok(report) => report,
        Err(refused) => {
            eprintln!("{refused}");
            return Err(Error::Failed(refused.to_string()));
        }
    };
    let outputs = Outputs {
        report: args.report.as_deref(),
        junit: args.junit.as_deref(),
        trace: None,
    };
    let timeline = outputs.write(ci, &report, &plan)?;
    write_stdout(|out| {
        output::summary(&report, &plan, true, out)?;
        writeln!(out, "{}", timeline.line())
    })?;
    if report.success {
        Ok(())
    } else {
        Err(Error::Failed(
            "a list's assembly, push or verification failed".into(),
        ))
    }
}

/// The files a run or merge writes besides its summary.
struct Outputs<'a> {
    report: Option<&'a Path>,
    junit: Option<&'a Path>,
    trace: Option<&'a Path>,
}

impl Outputs<'_> {
    /// Writes the report where asked (in a CI, always: in the run's directory by default, for
    /// the outputs to point at), the JUnit report, the trace, timeline.svg in the run's
    /// directory, and what the CI reads: the run's timeline.
    fn write(
        &self,
        ci: &crate::ci::Ci,
        report: &exec::Report,
        plan: &crate::Plan,
    ) -> Result<crate::timeline::Timeline, Error> {
        let timeline = crate::timeline::Timeline::of(report, plan);
        let in_ci = *ci != crate::ci::Ci::None;
        let default = report.run_dir.join("report.json");
        let path = self.report.or(in_ci.then_some(default.as_path()));
        if let Some(file) = path {
            let json = serde_json::to_string_pretty(report).expect("a report serialises");
            write_private(file, (json + "\n").as_bytes())
                .with_context(|| format!("cannot write the report to {}", file.display()))?;
        }
        if let Some(file) = self.junit {
            write_private(file, crate::ci::junit::junit(report).as_bytes())
                .with_context(|| format!("cannot write the JUnit report to {}", file.display()))?;
        }
        if let Some(file) = self.trace {
            write_private(file, crate::timeline::trace::trace(&timeline).as_bytes())
                .with_context(|| format!("cannot write the trace to {}", file.display()))?;
        }
        // Under .mab, every write goes through the state directory.
        let svg = report
            .run_dir
            .strip_prefix(&plan.workdir)
            .map(|rel| rel.join("timeline.svg"));
        if let Ok(rel) = svg {
            crate::state::StateDir::open(&plan.workdir)
                .and_then(|state| {
                    state.write(&rel, crate::timeline::svg::svg(&timeline).as_bytes())
                })
                .with_context(|| format!("cannot write {}", rel.display()))?;
        }
        if let Some(file) = path.filter(|_| in_ci) {
            let line = timeline.line();
            let written =
                write_stdout(|out| crate::ci::after_run(ci, report, plan, file, &line, out));
            written.context("cannot write the CI's files")?;
        }
        Ok(timeline)
    }
}

/// Writes `bytes` to `path` readable by its owner only (0600), an existing file included: a
/// report names registries, repositories and the run's commands.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only to a file this creates: an existing one is narrowed before a byte of
    // the new report is in it.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.set_len(0)?;
    file.write_all(bytes)
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage error is a bad command line (2); --help and --version are not errors.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let ci = crate::ci::Ci::from_process(cli.ci);
    match run(cli, &ci) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            match &err {
                Error::Config(config) => {
                    eprint!("{}", report(config));
                    let _ = write_stdout(|out| crate::ci::config_error(&ci, config, out));
                }
                // The checks, or the summary and its failures, are printed already.
                Error::Environment(what) => eprintln!("{what}"),
                Error::Failed(_) | Error::Interrupted(_) => {}
                Error::Other(e) => eprintln!("error: {e:#}"),
            }
            ExitCode::from(err.exit_code())
        }
    }
}
