//! A split runner (`mab run --platform P --digests-out FILE`): one job of a pipeline that
//! builds each platform on a runner of its own, then joins them with `mab merge`. It builds
//! every selected image for its platforms only, in dependency order, and pushes each image by
//! digest (`REPO:mab-image-ID`, never a release tag) the way a build node does; no list is
//! assembled. The registry check runs on the whole plan, so a list the registry holds with the
//! same inputs is skipped here as in a plain run, and its digests still go to the file.

use std::collections::{HashMap, HashSet};

use crate::digests_file::{DigestsFile, FORMAT_VERSION, ImageDigest};
use crate::plan::{BuildIx, Plan, publish_by_digest};
use crate::platform::Platform;

use super::published::{Applied, Checked, Verdict};
use super::{BuildReport, Report, Status};

/// `--rebuild` on a split runner: the input digests are still computed (the merge annotates
/// the lists with them), but nothing counts as published.
pub(super) fn rebuild_all(checked: &mut Checked) {
    for v in &mut checked.verdicts {
        *v = Verdict::Build(None);
    }
}

/// The runner's share of `applied` (the plan with unchanged builds left out): the builds of
/// `platforms` and those they need built here (a `--platform=$BUILDPLATFORM` read of another
/// platform's image), each of a pushed list published by digest; no list.
pub(super) fn runner_plan(applied: &Plan, platforms: &[Platform]) -> Plan {
    let index = applied.build_index();
    let mut keep: HashSet<BuildIx> = HashSet::new();
    let mut todo: Vec<BuildIx> = BuildIx::all(applied.builds.len())
        .filter(|&i| platforms.contains(&applied.builds[i].platform))
        .collect();
    while let Some(i) = todo.pop() {
        if keep.insert(i) {
            todo.extend(
                applied.builds[i]
                    .depends_on
                    .iter()
                    .map(|d| index[d.as_str()]),
            );
        }
    }
    let list_of: HashMap<&str, &crate::plan::Manifest> = applied
        .manifests
        .iter()
        .flat_map(|m| m.depends_on.iter().map(move |id| (id.as_str(), m)))
        .collect();
    let builds = applied
        .builds
        .iter()
        .zip(BuildIx::all(applied.builds.len()))
        .filter(|(_, i)| keep.contains(i))
        .map(|(b, _)| {
            let mut b = b.clone();
            let list = list_of.get(b.id.as_str()).filter(|m| m.push);
            if let (None, Some(m), true) = (&b.publish, list, platforms.contains(&b.platform)) {
                b.publish = Some(publish_by_digest(
                    &applied.podman,
                    &m.repository,
                    m.insecure,
                    applied.registries_conf.as_deref(),
                    &b.local_image,
                ));
            }
            b
        })
        .collect();
    Plan {
        builds,
        manifests: Vec::new(),
        ..applied.clone()
    }
}

/// The report of a split runner: every build of its platforms of `plan` (the whole plan), the
/// ones its run left out unchanged with the registry's image, each with its input digest, and
/// the other builds it ran; no list.
pub(super) fn report(
    plan: &Plan,
    checked: &Checked,
    applied: &Applied,
    platforms: &[Platform],
    mut ran: Report,
) -> Report {
    let published = super::published::unchanged_images(plan, checked);
    let mut by_id: HashMap<String, BuildReport> =
        ran.builds.drain(..).map(|r| (r.id.clone(), r)).collect();
    ran.builds = plan
        .builds
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let mut r = match (applied.builds[i], by_id.remove(&b.id)) {
                (_, Some(r)) => r,
                (None, None) if platforms.contains(&b.platform) => BuildReport {
                    status: Status::Unchanged,
                    published: published.get(b.id.as_str()).map(|(p, _)| p.clone()),
                    ..BuildReport::new(b, &ran.run_dir)
                },
                _ => return None,
            };
            r.inputs = Some(checked.digests.builds[i].clone());
            Some(r)
        })
        .collect();
    ran.manifests = Vec::new();
    ran
}

/// What a split runner writes to `--digests-out`: each image of `platforms` of a pushed list
/// that it built and pushed, or found unchanged, from its report; `plan` is the whole plan.
pub fn digests_file(plan: &Plan, report: &Report, platforms: &[Platform]) -> DigestsFile {
    let builds: HashMap<&str, &crate::plan::Build> =
        plan.builds.iter().map(|b| (b.id.as_str(), b)).collect();
    let pushed: HashMap<&str, &crate::plan::Manifest> = plan
        .manifests
        .iter()
        .filter(|m| m.push)
        .flat_map(|m| m.depends_on.iter().map(move |id| (id.as_str(), m)))
        .collect();
    let images = report
        .builds
        .iter()
        .filter(|r| platforms.contains(&r.platform))
        .filter(|r| matches!(r.status, Status::Built | Status::Unchanged))
        .filter_map(|r| {
            let m = pushed.get(r.id.as_str())?;
            let digest = &r.published.as_ref()?.digest;
            Some(ImageDigest {
                image: m.image.clone(),
                platform: r.platform.clone(),
                repository: m.repository.clone(),
                digest: digest.to_string(),
                inputs: r.inputs.clone()?,
                node: builds.get(r.id.as_str()).and_then(|b| b.node.clone()),
                unchanged: r.status == Status::Unchanged,
            })
        })
        .collect();
    DigestsFile {
        version: FORMAT_VERSION,
        run_id: report.run_id.clone(),
        platforms: platforms.to_vec(),
        lists: plan
            .manifests
            .iter()
            .filter(|m| m.push)
            .map(|m| m.image.clone())
            .collect(),
        images,
    }
}
