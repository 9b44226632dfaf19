//! What `mab run` and `mab merge` do before their first command: the state directory checked
//! and opened, this user's turn taken, what a dead run left stopped, the run's id and
//! directory, and the runner that supervises its commands.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::plan::{Plan, STATE_DIR};
use crate::process_ledger::Ledger as ProcessLedger;
use crate::state::{StateDir, refuse_tracked};
use crate::supervise::Supervisor;

use super::runner::{Runner, secret_values};
use super::{KILL_GRACE, Options};

/// A run set up: it holds the turn until dropped.
pub(super) struct Started<'p> {
    pub(super) state: StateDir,
    pub(super) run_id: String,
    /// `.mab/runs/ID`: its logs, for the user's eyes only (mode 0700).
    pub(super) run_dir: PathBuf,
    pub(super) runner: Runner<'p>,
    /// When the turn was taken: waiting for another run's is not this run's time.
    pub(super) origin: Instant,
    /// This user's turn (bind it to a named variable: it ends when dropped).
    pub(super) turn: File,
}

/// Sets up a run of `plan` (`build_timeout`: what a build may take; a merge builds nothing).
pub(super) fn start<'p>(
    plan: &'p Plan,
    opts: &Options,
    build_timeout: Option<Duration>,
) -> std::io::Result<Started<'p>> {
    // A repository that forged mab's state is refused before anything runs.
    refuse_tracked(&plan.workdir)?;
    let state = StateDir::open(&plan.workdir)?;
    state.refuse_links()?;
    let turn = take_turn()?;
    let origin = Instant::now();
    // Before this run writes anything a dead run's commands could still be writing.
    let ledger = ProcessLedger::open()?;
    ledger.stop_leftovers(KILL_GRACE);
    // The state directory is the run's own business, never the repository's.
    state.write(Path::new(STATE_DIR).join(".gitignore"), b"*\n")?;
    let run_id = run_id();
    let run_dir = state.new_dir(Path::new(STATE_DIR).join("runs").join(&run_id))?;
    let runner = Runner {
        workdir: &plan.workdir,
        supervisor: Supervisor::new(
            KILL_GRACE,
            opts.reaper.clone(),
            Some(ledger.record(&run_id)?),
            secret_values(&plan.secrets),
        )?,
        build_timeout,
        registry: opts.registry.limits,
        retries: opts.registry.retries,
        signer: opts.signer.clone(),
    };
    Ok(Started {
        state,
        run_id,
        run_dir,
        runner,
        origin,
        turn,
    })
}

pub(super) fn run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let compact: String = now.chars().filter(char::is_ascii_digit).collect();
    format!(
        "{}-{}-{}",
        &compact[..8],
        &compact[8..14.min(compact.len())],
        std::process::id()
    )
}

/// Waits until no other `mab run` of this user is running, and holds the turn until dropped.
/// The plan names local images and lists the same way on every run, and podman's storage is
/// shared by the user's runs: two at once would tag over each other's images. Taking turns keeps
/// both correct (each then verifies its own pushes; the last push of a tag wins).
fn take_turn() -> std::io::Result<File> {
    let uid = rustix::process::getuid().as_raw();
    let path = std::env::temp_dir().join(format!("mab-{uid}.lock"));
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!(
                "waiting for another mab run of this user to finish ({})",
                path.display()
            );
            file.lock()?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    Ok(file)
}
