//! What a run writes and fills in before and while it runs commands: the ignore files and
//! labeled Dockerfile copies the builds name, the digests other nodes pushed.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::plan::{Build, Hole, Manifest, Plan, Step};
use crate::state::StateDir;

/// Writes the ignore files the builds name: the context's own patterns, then the state
/// directory, so a context of `.` does not send this run's logs into the image.
pub(super) fn write_ignore_files(plan: &Plan, state: &StateDir) -> std::io::Result<()> {
    let mut written = HashSet::new();
    for f in plan.builds.iter().filter_map(|b| b.ignorefile.as_ref()) {
        // One file per image, named by each of its platforms' builds.
        if !written.insert(&f.path) {
            continue;
        }
        let base = match &f.base {
            Some(path) => std::fs::read_to_string(path)?,
            None => String::new(),
        };
        state.write(&f.path, f.text(&base).as_bytes())?;
    }
    Ok(())
}

/// Writes the Dockerfile copies the builds name (their labels in one instruction, the platform
/// args their `FROM` lines read declared).
pub(super) fn write_dockerfile_copies(plan: &Plan, state: &StateDir) -> std::io::Result<()> {
    // The builds of an image share its Dockerfile: read each once.
    let mut read: HashMap<&Path, String> = HashMap::new();
    for copy in plan.builds.iter().filter_map(|b| b.dockerfile.as_ref()) {
        let base = match read.entry(copy.base.as_path()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(std::fs::read_to_string(plan.workdir.join(&copy.base))?)
            }
        };
        state.write(&copy.path, copy.text(base).as_bytes())?;
    }
    Ok(())
}

/// Makes sure podman can write the files the plan's commands name (`--iidfile`,
/// `--digestfile`) itself, never through a link: their directories checked, files an earlier
/// run left removed.
pub(super) fn clear_outputs(plan: &Plan, state: &StateDir) -> std::io::Result<()> {
    let iids = plan.builds.iter().map(|b| &b.iidfile);
    let digests = plan
        .manifests
        .iter()
        .flat_map(|m| &m.publish)
        .filter_map(Step::digestfile);
    iids.map(String::as_str)
        .chain(digests)
        .filter(|f| !f.is_empty())
        .try_for_each(|f| state.clear(f))
}

/// What other nodes pushed, by build id: each `<digest of BUILD>` it knows filled.
fn pushed_digest(pushed: &HashMap<String, String>) -> impl Fn(&Hole) -> Option<String> + '_ {
    |hole| match hole {
        Hole::DigestOf(build) => pushed.get(build).cloned(),
        _ => None,
    }
}

/// Build `b` with the digests other nodes pushed (`pushed`, by build id) in its command.
pub(super) fn filled_build(b: &Build, pushed: &HashMap<String, String>) -> Build {
    Build {
        argv: b.argv.fill(pushed_digest(pushed)),
        ..b.clone()
    }
}

/// List `m` with the digests other nodes pushed (`pushed`, by build id) in its adds.
pub(super) fn filled_list(m: &Manifest, pushed: &HashMap<String, String>) -> Manifest {
    let mut m = m.clone();
    for add in &mut m.assemble.adds {
        add.command = add.command.fill(pushed_digest(pushed));
    }
    m
}
