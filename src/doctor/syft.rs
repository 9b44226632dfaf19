//! `[sbom] generator = "syft"` needs the syft program: doctor says whether it runs, and how to
//! install it.

use std::process::Command;

use super::Check;
use crate::config::SbomGenerator;
use crate::plan::Plan;
use crate::sbom::{SYFT, SYFT_INSTALL, syft_env};

/// The check, for a plan that makes SBOMs with syft (none otherwise).
pub(super) fn checks(plan: &Plan) -> Vec<Check> {
    let uses_syft = plan
        .content
        .settings
        .sbom
        .is_some_and(|s| s.generator == SbomGenerator::Syft);
    if !uses_syft {
        return Vec::new();
    }
    let out = Command::new(SYFT).arg("version").envs(syft_env()).output();
    vec![match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let version = text
                .lines()
                .find_map(|l| l.strip_prefix("Version:"))
                .map_or("", str::trim);
            Check::pass(format!("syft {version} (for [sbom] generator = \"syft\")"))
        }
        Ok(o) => Check::fail(
            format!(
                "`syft version` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            SYFT_INSTALL,
        ),
        Err(_) => Check::fail(
            "syft is not installed, and [sbom] generator = \"syft\" needs it",
            SYFT_INSTALL,
        ),
    }]
}
