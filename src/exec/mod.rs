//! `mab run`: executes a [`Plan`] exactly. Builds run on a bounded rayon pool as soon as their
//! own dependencies are done (no level-by-level barriers); among ready builds the one with the
//! most work behind it starts first. A coordinator on the calling thread owns all state.
//!
//! Publishing never leaves a partial manifest list: a list is assembled fresh each run, each
//! image added as soon as it is built, pushed only once it holds every platform, then read
//! back from each tag and checked against the plan. A list that a failure left incomplete is
//! removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::plan::{Build, Plan, STATE_DIR};
use crate::platform::Platform;
use crate::progress::{self, Progress};
use crate::state::{StateDir, refuse_tracked};
use crate::supervise::{Limits, Supervisor, When};

mod attachments;
mod content;
mod coordinator;
pub mod events;
mod external;
mod interrupt;
mod jobs;
mod merge;
mod outcomes;
mod prepare;
mod publish;
mod published;
mod report;
mod runner;
pub mod schedule;
mod setup;
mod sign;
mod split;
mod verify;

use coordinator::Drained;
pub use events::RunEvent;
pub use merge::{Refused, merge};
use outcomes::Outcomes;
use prepare::{clear_outputs, write_dockerfile_copies, write_ignore_files};
pub use report::{
    BuildReport, Held, JobKind, JobTiming, ManifestReport, Report, Status, TagReport, TagStatus,
};
use runner::Runner;
use schedule::{Scheduler, Shape};
pub use split::digests_file;
pub use verify::verify_index;

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Builds at once; as many list jobs (assembly, pushes) may run beside them.
    pub jobs: usize,
    /// On a failure, go on with everything that does not depend on it.
    pub keep_going: bool,
    /// Push nothing until every build of the run has succeeded; after a failed publication or
    /// an interrupt, put every tag the run moved back to what it held.
    pub atomic: bool,
    /// `false`: assemble local manifest lists only.
    pub push: bool,
    pub progress: progress::Mode,
    /// A build running longer fails (its process group is killed).
    pub timeout: Option<Duration>,
    /// How commands that talk to a registry run.
    pub registry: Registry,
    /// Show each command as it starts.
    pub verbose: bool,
    /// Skip the lists whose inputs the registry already holds (not with `--rebuild`; only
    /// when pushing).
    pub skip_published: bool,
    /// How to start this program as the reaper that stops what is left running if mab dies
    /// (`mab __reap`); none: no reaper.
    pub reaper: Option<Vec<String>>,
    /// A split runner's platforms (`mab run --platform P --digests-out FILE`): build those of
    /// the whole plan it is given, push each image by digest, assemble no list ([`split`]).
    pub split: Option<Vec<Platform>>,
    /// The key that signs (`[signing]`), opened before the run: a wrong password fails the
    /// run before anything is built.
    pub signer: Option<std::sync::Arc<crate::sign::Signer>>,
}

/// How commands that talk to a registry run (`crate::settings::registry`).
#[derive(Debug, Clone, Copy)]
pub struct Registry {
    /// What each may take (`RegistryStep` in runner.rs says which commands these are).
    pub limits: Limits,
    /// Retries of a push or registry read after a transient failure.
    pub retries: u32,
}

/// How long a command gets to stop after SIGTERM (a timeout, an interrupt) before SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// Emulated builds (RUN steps of another architecture, through qemu) take several times as
/// long; a cross-compiled one runs natively.
fn cost(build: &Build, host: &Platform) -> u64 {
    if build.emulated(host).next().is_some() {
        5
    } else {
        1
    }
}

/// What a run of `plan` would build and push, after reading the registry: the plan with the
/// lists whose inputs the registry holds left out (`mab plan --check-registry`).
pub fn preview(plan: &Plan, registry: Registry) -> std::io::Result<Plan> {
    let (runner, logs) = reader(plan, registry, "plan")?;
    let plan = &external::resolve(plan, &runner, &logs)?;
    let checked = published::check(plan, &runner, &logs)?;
    Ok(published::apply(plan, &checked).plan)
}

/// `mab verify`: what the registry holds for `plan`, checked with `key`. Its reads run as a
/// run's do: under the registry limits, retried after a transient failure, logged (in
/// `.mab/runs/verify-ID/verify.log`), so that a registry that stops answering cannot hang a CI
/// gate.
pub fn verify_published(
    plan: &Plan,
    key: &p256::ecdsa::VerifyingKey,
    registry: Registry,
) -> std::io::Result<Vec<crate::sign::verify::Verdict>> {
    let (runner, logs) = reader(plan, registry, "verify")?;
    let log = logs.join("verify.log");
    let reads = sign::Logged {
        runner: &runner,
        log: &log,
    };
    Ok(crate::sign::verify::verify(
        plan,
        key,
        &reads,
        registry.limits,
    ))
}

/// A runner for the registry reads of a command that builds nothing (`kind`: `plan`,
/// `verify`), and a directory of its own for their logs.
fn reader<'p>(
    plan: &'p Plan,
    registry: Registry,
    kind: &str,
) -> std::io::Result<(Runner<'p>, PathBuf)> {
    refuse_tracked(&plan.workdir)?;
    let state = StateDir::open(&plan.workdir)?;
    let logs =
        state.new_dir(Path::new(STATE_DIR).join(format!("runs/{kind}-{}", setup::run_id())))?;
    let runner = Runner {
        workdir: &plan.workdir,
        supervisor: Supervisor::new(KILL_GRACE, None, None, Vec::new())?,
        build_timeout: None,
        registry: registry.limits,
        retries: registry.retries,
        signer: None,
    };
    Ok((runner, logs))
}

/// Executes `plan`. Returns when every job has ended; never panics on a failed job. Once the
/// registry has said what is left to build, and only if something is, `preflight` checks the
/// machine for that plan; `false` (it says why itself) ends the run before any job: `None`.
pub fn run(
    plan: &Plan,
    opts: &Options,
    preflight: impl FnOnce(&Plan) -> bool,
) -> std::io::Result<Option<Report>> {
    let setup::Started {
        state,
        run_id,
        run_dir,
        runner,
        // Job times count from here.
        origin,
        turn: _turn,
    } = setup::start(plan, opts, opts.timeout)?;
    write_ignore_files(plan, &state)?;
    write_dockerfile_copies(plan, &state)?;
    clear_outputs(plan, &state)?;
    // Every external platform's tag is resolved once, before anything is built.
    let plan = &external::resolve(plan, &runner, &run_dir)?;
    let split = opts.split.as_deref();
    // A split runner needs the input digests even with --rebuild: the merge annotates with them.
    let (checked, applied) = if opts.push && (opts.skip_published || split.is_some()) {
        let mut checked = published::check(plan, &runner, &run_dir)?;
        if !opts.skip_published {
            split::rebuild_all(&mut checked);
        }
        let applied = published::apply(plan, &checked);
        (Some(checked), Some(applied))
    } else {
        (None, None)
    };
    let work = applied.as_ref().map_or(plan, |a| &a.plan);
    let shared;
    let work = match split {
        Some(platforms) => {
            shared = split::runner_plan(work, platforms);
            &shared
        }
        None => work,
    };
    // What the registry check added (marker pushes) writes files too.
    clear_outputs(work, &state)?;
    // Pushing nothing means no cache layers either: the plan of `--no-push` has no
    // `--cache-to` (`Selection::no_push`).
    // A run that builds nothing needs nothing of the machine's podman.
    if !work.builds.is_empty() && !preflight(work) {
        return Ok(None);
    }
    let progress = Progress::new(opts.progress, progress::Labels::of(work), opts.verbose);
    let first = match (&checked, &applied) {
        (Some(checked), Some(applied)) => vec![RunEvent::Checked(published::summary(
            plan, checked, applied,
        ))],
        _ => Vec::new(),
    };
    let executed = execute(work, opts, &runner, &run_dir, &progress, origin, first)?;
    progress.done();
    let report = Report {
        run_id,
        run_dir,
        interrupted: executed.interrupted,
        success: executed.success,
        builds: executed.builds,
        manifests: executed.manifests,
    };
    Ok(Some(match (checked, applied) {
        (Some(checked), Some(applied)) => match split {
            Some(platforms) => split::report(plan, &checked, &applied, platforms, report),
            None => published::merge(plan, &checked, &applied, report),
        },
        _ => report,
    }))
}

/// The shape of the run of `plan` for the scheduler: per build its cost, dependencies and
/// node, per list its builds and whether it is pushed.
fn shape(plan: &Plan, opts: &Options) -> Shape {
    let index = plan.build_index();
    // The scheduler numbers builds as the plan does.
    let indexes = |ids: &[String]| ids.iter().map(|d| index[d.as_str()]).collect::<Vec<_>>();
    let host = Platform::host();
    // A build emulates when it runs steps of a platform other than its machine's own.
    let machine = |b: &Build| {
        b.node
            .as_ref()
            .and_then(|n| plan.nodes.iter().find(|p| p.name == *n))
            .map_or(&host, |n| &n.platforms[0])
    };
    Shape {
        ids: plan.builds.iter().map(|b| b.id.clone()).collect(),
        costs: plan.builds.iter().map(|b| cost(b, machine(b))).collect(),
        depends_on: plan.builds.iter().map(|b| indexes(&b.depends_on)).collect(),
        manifest_builds: plan
            .manifests
            .iter()
            .map(|m| indexes(&m.depends_on))
            .collect(),
        pushes: plan.manifests.iter().map(|m| opts.push && m.push).collect(),
        // Without build nodes, this machine is the one node, with --jobs slots.
        node: plan
            .builds
            .iter()
            .map(|b| {
                b.node
                    .as_ref()
                    .and_then(|n| plan.nodes.iter().position(|p| p.name == *n))
                    .unwrap_or(0)
            })
            .collect(),
        node_slots: if plan.nodes.is_empty() {
            vec![opts.jobs.max(1)]
        } else {
            plan.nodes.iter().map(|n| n.jobs).collect()
        },
    }
}

/// How the jobs of a plan ended.
struct Executed {
    interrupted: Option<i32>,
    success: bool,
    builds: Vec<BuildReport>,
    manifests: Vec<ManifestReport>,
}

/// Runs every job of `plan`, in dependency order, until all have ended or the run stops;
/// then removes the lists left half-assembled and, for `--atomic` after a failure, puts back
/// the tags the run moved.
fn execute(
    plan: &Plan,
    opts: &Options,
    runner: &Runner,
    run_dir: &Path,
    progress: &Progress,
    origin: Instant,
    first: Vec<RunEvent>,
) -> std::io::Result<Executed> {
    let scheduler = Scheduler::new(shape(plan, opts), opts.keep_going, opts.atomic);
    let Drained {
        scheduler,
        outcomes,
        interrupted,
    } = coordinator::drain(
        plan, run_dir, runner, progress, opts.jobs, scheduler, origin, first,
    )?;
    let Outcomes {
        mut builds,
        mut manifests,
    } = outcomes;
    // Leave no half-assembled local list behind: a failed build or an interrupt stops a list
    // that holds some of its images.
    for m in scheduler.partial_lists() {
        let man = &plan.manifests[m];
        if let Some(rm) = &man.remove_stale {
            let log = &manifests[m].log;
            let _ = runner.command(rm, log, false, None, When::Cleanup);
        }
    }
    let (build_status, manifest_status, success) = scheduler.finish();
    for (report, status) in builds.iter_mut().zip(build_status) {
        report.status = status;
    }
    for (report, status) in manifests.iter_mut().zip(manifest_status) {
        report.status = status;
    }
    // --atomic: a run that failed or was interrupted leaves no tag moved that it can put back.
    if opts.atomic && (!success || interrupted.is_some()) {
        for (man, report) in plan.manifests.iter().zip(&mut manifests) {
            runner.restore(man, &mut report.tags, &report.log);
            if report.status == Status::Pushed
                && report.tags.iter().any(|t| t.status == TagStatus::Restored)
            {
                report.status = Status::Restored;
            }
        }
    }
    Ok(Executed {
        interrupted,
        success,
        builds,
        manifests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn platforms_compare_as_platforms() {
        // podman writes arm64 with variant v8 on some hosts: the same platform as plain arm64.
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","platform":{"os":"linux","architecture":"arm64","variant":"v8"}}]}"#;
        let digest = format!("sha256:{:x}", Sha256::digest(raw));
        let planned: Vec<Platform> = vec!["linux/arm64".parse().unwrap()];
        assert_eq!(verify_index(raw, &digest, &planned), Ok(()));
    }

    #[test]
    fn a_list_must_hold_the_images_the_nodes_pushed() {
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"os":"linux","architecture":"arm64"}}]}"#;
        let arm: Platform = "linux/arm64".parse().unwrap();
        let ones = format!("sha256:{}", "1".repeat(64));
        let twos = format!("sha256:{}", "2".repeat(64));
        assert_eq!(verify::verify_entries(raw, &[(arm.clone(), ones)]), Ok(()));
        let err = verify::verify_entries(raw, &[(arm, twos.clone())]).unwrap_err();
        assert!(
            err.contains(&format!("but the run put {twos} there")),
            "{err}"
        );
        let amd: Platform = "linux/amd64".parse().unwrap();
        let err = verify::verify_entries(raw, &[(amd, twos)]).unwrap_err();
        assert!(err.contains("it lists no linux/amd64 image"), "{err}");
    }

    #[test]
    fn verify_checks_digest_and_platforms() {
        let entry = |digit: char, platform: &str| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":512,"digest":"sha256:{}","platform":{platform}}}"#,
                digit.to_string().repeat(64)
            )
        };
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{}]}}"#,
            entry('a', r#"{"os":"linux","architecture":"arm","variant":"v7"}"#),
            entry('b', r#"{"os":"linux","architecture":"amd64"}"#)
        );
        let raw = raw.as_bytes();
        let digest = format!("sha256:{:x}", Sha256::digest(raw));
        let planned: Vec<Platform> = ["linux/amd64", "linux/arm/v7"]
            .iter()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(verify_index(raw, &digest, &planned), Ok(()));
        let wrong = verify_index(raw, "sha256:0", &planned).unwrap_err();
        assert!(wrong.contains("but sha256:0 was pushed"), "{wrong}");
        let fewer: Vec<Platform> = vec!["linux/amd64".parse().unwrap()];
        let err = verify_index(raw, &digest, &fewer).unwrap_err();
        assert!(
            err.contains("lists [linux/amd64, linux/arm/v7], the plan has [linux/amd64]"),
            "{err}"
        );
    }

    #[test]
    fn priority_counts_everything_behind_a_build() {
        // a <- b <- c, a <- d, and d also <- c: a unblocks three builds, counted once each.
        let dependents = [&[1, 3][..], &[2], &[], &[2]].map(|d| {
            d.iter()
                .map(|&i| crate::plan::BuildIx::new(i))
                .collect::<Vec<_>>()
        });
        assert_eq!(
            schedule::priorities(&[1, 1, 1, 1], &dependents),
            [4, 2, 1, 2]
        );
        // An emulated build weighs more than a native one.
        assert_eq!(
            schedule::priorities(&[1, 5, 1, 1], &dependents),
            [8, 6, 1, 2]
        );
        let host: Platform = "linux/amd64".parse().unwrap();
        let build = |platform: &str, runs: &[&str]| Build {
            id: format!("x@{platform}"),
            iidfile: String::new(),
            image: "x".into(),
            platform: platform.parse().unwrap(),
            depends_on: Vec::new(),
            local_image: String::new(),
            argv: crate::plan::Command::new(crate::plan::CommandKind::Build, ["podman"], ["build"]),
            build_args: Default::default(),
            insecure: false,
            run_platforms: runs.iter().map(|p| p.parse().unwrap()).collect(),
            features: Vec::new(),
            dockerfile: None,
            ignorefile: None,
            node: None,
            publish: None,
            inputs: crate::plan::Inputs {
                context: ".".into(),
                dockerfile: "Dockerfile".into(),
                dirs: Vec::new(),
                bases: Vec::new(),
                per_run_labels: Vec::new(),
                labels: Vec::new(),
            },
        };
        assert_eq!(cost(&build("linux/arm64", &["linux/arm64"]), &host), 5);
        assert_eq!(cost(&build("linux/amd64", &["linux/amd64"]), &host), 1);
        // Cross-compiled: its RUN steps are on the host, the result is arm64.
        assert_eq!(cost(&build("linux/arm64", &["linux/amd64"]), &host), 1);
        assert_eq!(cost(&build("linux/s390x", &[]), &host), 1);
    }
}
