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
use crate::settings::{self, Environment, MergeSettings, RunSettings, TargetSettings, current_dir};
use crate::{doctor, exec};

pub(crate) mod args;
mod outputs;

use args::{Allow, Cli, Command, Format, MergeArgs, RunArgs, Target};

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

fn dispatch(cli: Cli, env: &Environment, ci: &crate::ci::Ci) -> Result<(), Error> {
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
        Command::Run { target, run } => run_command(target, run, env, ci),
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
            merge(target, &files, out, env, ci)
        }
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
            let settings::Planned { mut plan, builder } =
                TargetSettings::resolve(target, env, false)?.plan()?;
            if check_registry {
                plan = exec::preview(&plan, settings::registry(&builder, None)).map_err(|e| {
                    crate::state::run_error(e, || {
                        format!("cannot check the registry from {}", plan.workdir.display())
                    })
                })?;
            }
            eprint!("{}", output::warnings(&plan));
            let written = write_stdout(|out| match format {
                Format::Text => output::text(&plan, &display_path(&plan.workdir), out),
                Format::Json => output::json(&plan, &builder, out),
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
    let crate::settings::Planned { plan, builder } =
        TargetSettings::resolve(target, env, false)?.plan()?;
    let key = crate::sign::verify::public_key(&plan, key)?;
    let verdicts = exec::verify_published(&plan, &key, crate::settings::registry(&builder, None))
        .map_err(|e| {
        crate::state::run_error(e, || {
            format!("cannot read the registry from {}", plan.workdir.display())
        })
    })?;
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
fn run_command(
    mut target: Target,
    run: RunArgs,
    env: &Environment,
    ci: &crate::ci::Ci,
) -> Result<(), Error> {
    RunSettings::check_target(&target, &run)?;
    // A split runner plans every platform: the registry check looks lists up by all their
    // builds' inputs, and the run keeps its own platforms' builds.
    let split = run
        .digests_out
        .as_ref()
        .map(|_| std::mem::take(&mut target.platforms));
    let planned = TargetSettings::resolve(target, env, run.no_push)?.plan()?;
    eprint!("{}", output::warnings(&planned.plan));
    let settings = RunSettings::resolve(run, &planned, env, split)?;
    let plan = planned.plan;
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
    let timeline = outputs::write(&settings.outputs, ci, &report, &plan)?;
    if let (Some(file), Some(platforms)) = (&settings.digests_out, &settings.exec.split) {
        let digests = exec::digests_file(&plan, &report, platforms);
        write_private(file, digests.to_json().as_bytes())
            .with_context(|| format!("cannot write the digests to {}", file.display()))?;
    }
    write_stdout(|out| {
        output::summary(&report, &plan, settings.table, out)?;
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
    target: Target,
    files: &[PathBuf],
    args: MergeArgs,
    env: &Environment,
    ci: &crate::ci::Ci,
) -> Result<(), Error> {
    let read: Vec<(PathBuf, crate::digests_file::DigestsFile)> = files
        .iter()
        .map(|f| crate::digests_file::DigestsFile::read(f).map(|d| (f.clone(), d)))
        .collect::<Result<_, String>>()
        .map_err(|e| ConfigError::new(crate::error::ErrorKind::Selection, e))?;
    let planned = TargetSettings::resolve(target, env, false)?.plan()?;
    eprint!("{}", output::warnings(&planned.plan));
    let settings = MergeSettings::resolve(args, &planned, env)?;
    let plan = planned.plan;
    let report = exec::merge(&plan, &read, &settings.exec).map_err(|e| {
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
    let timeline = outputs::write(&settings.outputs, ci, &report, &plan)?;
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
    let ci = crate::ci::Ci::from_process(cli.ci);
    match dispatch(cli, &env, &ci) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            match &err {
                Error::Config(config) => {
                    eprint!("{}", report(config, &env));
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
