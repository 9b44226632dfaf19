//! The Dockerfile features of a plan's reached stages, judged by the podman at hand
//! ([`crate::podman_features`]).

use std::collections::BTreeSet;
use std::path::Path;

use super::Check;
use crate::plan::{FeatureUse, Plan};
use crate::podman_features::{Does, Verdict, Version, row};

/// The features of the reached stages that this podman builds differently from BuildKit or not
/// at all ([`crate::podman_features`]): a failure where it rejects one, with the version that
/// builds it or the rewrite; a warning where it differs or was not measured. One line per use.
pub(super) fn checks(plan: &Plan, version: &str) -> Vec<Check> {
    let Some(v) = Version::parse(version) else {
        return vec![Check::warn(
            format!(
                "podman {version}: a version mab cannot read, so the Dockerfile features it builds are unknown"
            ),
            "check podman (`podman version`)",
        )];
    };
    let uses: BTreeSet<(&Path, FeatureUse)> = plan
        .builds
        .iter()
        .filter(|b| b.publish.is_none())
        .flat_map(|b| {
            b.features
                .iter()
                .map(|u| (b.inputs.dockerfile.as_path(), *u))
        })
        .collect();
    let mut out = Vec::new();
    for (file, u) in uses {
        let row = row(u.feature);
        let at = format!("{}:{}:{}", file.display(), u.line, u.column);
        if let Some(how) = row.mab {
            out.push(Check::pass(format!(
                "{at}: {}: mab makes it work: {how}",
                row.written
            )));
            continue;
        }
        out.push(match row.verdict(v) {
            Verdict::Known(Does::Builds, _) => continue,
            Verdict::Known(Does::Rejects(said), measured) => Check::fail(
                format!("{at}: {}, which podman {v} cannot build (measured on {measured}: \"{said}\")", row.written),
                match row.builds_from() {
                    Some(from) => format!("use podman {from} or later, or {}", row.rewrite),
                    None => format!("no measured podman version builds it; {}", row.rewrite),
                },
            ),
            Verdict::Known(Does::Differs(how), measured) => Check::warn(
                format!("{at}: {}, which podman {v} builds differently from BuildKit (measured on {measured}: {how})", row.written),
                row.rewrite,
            ),
            Verdict::Unknown { below, above } => Check::warn(
                format!(
                    "{at}: {}, not measured on podman {v}: {} {}, {} {}",
                    row.written,
                    below.0,
                    said(below.1),
                    above.0,
                    said(above.1)
                ),
                format!("if the build fails there: {}", row.rewrite),
            ),
        });
    }
    out
}

/// A measurement in words, for a line that names two.
fn said(does: Does) -> String {
    match does {
        Does::Builds => "builds it".into(),
        Does::Rejects(_) => "rejects it".into(),
        Does::Differs(how) => format!("builds it differently ({how})"),
    }
}
