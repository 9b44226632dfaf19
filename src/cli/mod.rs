//! The command line: argument parsing and rendering of results and errors. Everything it does is
//! a library call; this is the only place that prints or picks exit codes.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use miette::{GraphicalReportHandler, GraphicalTheme};

use anyhow::Context;

use crate::config::{self, display_path};
use crate::error::{ConfigError, Error};
use crate::output;
use crate::plan::Selection;
use crate::settings::{self, Environment, RunSettings, TargetSettings, current_dir};
use crate::{doctor, exec};

pub(crate) mod args;

use args::{Allow, Cli, Command, Format, RunArgs, Target};

fn report(err: &ConfigError, env: &Environment) -> String {
    let stderr = std::io::stderr();
    let color = stderr.is_terminal() && !env.no_color;
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

fn dispatch(cli: Cli, env: &Environment) -> Result<(), Error> {
    match cli.command {
        Command::Init { dockerfile } => init(&dockerfile),
        Command::Completions { shell } => write_stdout(|out| {
            clap_complete::generate(shell, &mut Cli::command(), "mab", out);
            Ok(())
        }),
        Command::Man => write_stdout(|out| clap_mangen::Man::new(Cli::command()).render(out)),
        Command::Doctor { file, allow } => doctor(file, allow, env),
        Command::Reap => {
            Ok(crate::supervise::reap(exec::KILL_GRACE)
                .context("the reaper lost its pipe to mab")?)
        }
        Command::Schema => write_stdout(|out| {
            serde_json::to_writer_pretty(&mut *out, &config::schema())?;
            writeln!(out)
        }),
        Command::Run { target, run } => run_command(target, run, env),
        Command::Keygen { output_key_prefix } => {
            let (key, public) = crate::sign::keygen::keygen(&output_key_prefix)?;
            eprintln!("wrote {} and {}", key.display(), public.display());
            Ok(())
        }
        Command::Verify { target, key } => verify(target, key.as_deref(), env),
        Command::Plan {
            target,
            format,
            check_registry,
        } => {
            let mut plan = TargetSettings::resolve(target, env, false)?.plan()?;
            if check_registry {
                plan = exec::preview(&plan, settings::registry(&plan, None)).map_err(|e| {
                    crate::state::run_error(e, || {
                        format!("cannot check the registry from {}", plan.workdir.display())
                    })
                })?;
            }
            eprint!("{}", output::warnings(&plan));
            let written = write_stdout(|out| match format {
                Format::Text => output::text(&plan, &display_path(&plan.workdir), out),
                Format::Json => output::json(&plan, out),
                Format::Dot => output::dot(&plan, out),
            });
            // The process ends here: freeing a large plan piece by piece is wasted work (4% of
            // the instructions of a 1,000-image plan).
            std::mem::forget(plan);
            written
        }
    }
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
fn doctor(file: Option<PathBuf>, allow: Allow, env: &Environment) -> Result<(), Error> {
    let cwd = current_dir()?;
    let allowed = settings::allowed(allow, &cwd, env);
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

/// `mab verify`: the registry against the plan and the public key.
fn verify(target: Target, key: Option<&Path>, env: &Environment) -> Result<(), Error> {
    let plan = TargetSettings::resolve(target, env, false)?.plan()?;
    let key = crate::sign::verify::public_key(&plan, key)?;
    let verdicts = crate::sign::verify::verify(&plan, &key, &crate::sign::verify::Plain);
    let text = crate::sign::verify::render(&verdicts);
    write_stdout(|out| out.write_all(text.as_bytes()))?;
    let failed = verdicts.iter().filter(|v| !v.ok()).count();
    if failed > 0 {
        return Err(Error::Failed(format!(
            "{failed} of {} reference(s) do not hold what the plan and the key say",
            verdicts.len()
        )));
    }
    Ok(())
}

/// `mab run`: plan, check the machine, execute, report.
fn run_command(target: Target, run: RunArgs, env: &Environment) -> Result<(), Error> {
    RunSettings::check_target(&target, &run)?;
    let plan = TargetSettings::resolve(target, env, run.no_push)?.plan()?;
    eprint!("{}", output::warnings(&plan));
    let settings = RunSettings::resolve(run, &plan, env)?;
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
    let report = exec::run(&plan, &settings.exec, preflight)
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
    if let Some(file) = &settings.report {
        let json = serde_json::to_string_pretty(&report).expect("a report serialises");
        write_private(file, (json + "\n").as_bytes())
            .with_context(|| format!("cannot write the report to {}", file.display()))?;
    }
    write_stdout(|out| output::summary(&report, &plan, settings.table, out))?;
    match report.interrupted {
        Some(signal) => Err(Error::Interrupted(signal)),
        None if report.success => Ok(()),
        None => Err(Error::Failed("a build, push or verification failed".into())),
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
    // The settings step: the environment is read here, once, and handed down.
    let env = Environment::from_process();
    match dispatch(cli, &env) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            match &err {
                Error::Config(config) => eprint!("{}", report(config, &env)),
                // The checks, or the summary and its failures, are printed already.
                Error::Environment(what) => eprintln!("{what}"),
                Error::Failed(_) | Error::Interrupted(_) => {}
                Error::Other(e) => eprintln!("error: {e:#}"),
            }
            ExitCode::from(err.exit_code())
        }
    }
}
