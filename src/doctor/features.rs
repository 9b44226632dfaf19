//! The Dockerfile features of a plan's reached stages, judged by the podman at hand
//! ([`crate::podman_features`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::Check;
use crate::plan::{FeatureUse, Plan};
use crate::podman_features::{Does, Verdict, Version, row};

/// The podman versions builds run on: this machine's, and each remote node's by name, as far as
/// they answered (a node that did not fails its own check).
pub(super) struct Versions<'a> {
    pub local: Option<&'a str>,
    pub nodes: &'a BTreeMap<String, String>,
}

/// The features of the reached stages that the podman each build runs on builds differently from
/// BuildKit or not at all ([`crate::podman_features`]): a failure where it rejects one, with the
/// version that builds it or the rewrite; a warning where it differs or was not measured. One
/// line per use and podman; a build on a remote node is judged by that node's version.
pub(super) fn checks(plan: &Plan, versions: &Versions) -> Vec<Check> {
    // (node, its version) of each build; None for this machine.
    let uses: BTreeSet<(Option<&str>, &str, &Path, FeatureUse)> = plan
        .builds
        .iter()
        .filter_map(|b| {
            let on = match (&b.publish, &b.node) {
                (None, _) => (None, versions.local?),
                (Some(_), Some(node)) => (Some(node.as_str()), versions.nodes.get(node)?.as_str()),
                (Some(_), None) => return None,
            };
            Some((on, b))
        })
        .flat_map(|((node, version), b)| {
            b.features
                .iter()
                .map(move |u| (node, version, b.inputs.dockerfile.as_path(), *u))
        })
        .collect();
    let mut unreadable = BTreeSet::new();
    // What mab does itself is said once per use, whatever podman builds it.
    let mut made = BTreeSet::new();
    let mut out = Vec::new();
    for (node, version, file, u) in uses {
        if row(u.feature).mab.is_some() && !made.insert((file, u)) {
            continue;
        }
        let Some(v) = Version::parse(version) else {
            if unreadable.insert((node, version)) {
                out.push(Check::warn(
                    format!("podman {version}{}: a version mab cannot read, so the Dockerfile features it builds are unknown", on(node)),
                    "check podman (`podman version`)",
                ));
            }
            continue;
        };
        let podman = format!("podman {v}{}", on(node));
        out.extend(check(&podman, v, file, u));
    }
    out
}

/// One use of a feature on one podman.
fn check(podman: &str, v: Version, file: &Path, u: FeatureUse) -> Option<Check> {
    let row = row(u.feature);
    let at = format!("{}:{}:{}", file.display(), u.line, u.column);
    if let Some(how) = row.mab {
        return Some(Check::pass(format!(
            "{at}: {}: mab makes it work: {how}",
            row.written
        )));
    }
    Some(match row.verdict(v) {
        Verdict::Known(Does::Builds, _) => return None,
        Verdict::Known(Does::Rejects(said), measured) => Check::fail(
            format!(
                "{at}: {}, which {podman} cannot build (measured on {measured}: \"{said}\")",
                row.written
            ),
            match row.builds_from() {
                Some(from) => format!("use podman {from} or later, or {}", row.rewrite),
                None => format!("no measured podman version builds it; {}", row.rewrite),
            },
        ),
        Verdict::Known(Does::Differs(how), measured) => Check::warn(
            format!(
                "{at}: {}, which {podman} builds differently from BuildKit (measured on {measured}: {how})",
                row.written
            ),
            row.rewrite,
        ),
        Verdict::Unknown { below, above } => Check::warn(
            format!(
                "{at}: {}, not measured on {podman}: {} {}, {} {}",
                row.written,
                below.0,
                said(below.1),
                above.0,
                said(above.1)
            ),
            format!("if the build fails there: {}", row.rewrite),
        ),
    })
}

/// Which podman, after its version: none for this machine's.
fn on(node: Option<&str>) -> String {
    node.map_or(String::new(), |n| format!(" (node {n})"))
}

/// A measurement in words, for a line that names two.
fn said(does: Does) -> String {
    match does {
        Does::Builds => "builds it".into(),
        Does::Rejects(_) => "rejects it".into(),
        Does::Differs(how) => format!("builds it differently ({how})"),
    }
}
