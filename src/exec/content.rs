//! A build's content steps in a run, right after its image is made and before it joins a list:
//! the ELF check of its own layers ([`crate::content`]) and its SBOM ([`crate::sbom`]), every
//! command through the runner and into the build's log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Sbom, SbomGenerator};
use crate::content::steps::{self, Outcome};
use crate::plan::{Build, Command, CommandKind, Plan};
use crate::supervise::When;

use super::runner::{Failure, Runner};

/// What a build's content steps found, for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BuildContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Outcome>,
    pub check_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<SbomMade>,
}

/// An SBOM made of a build's image; attached once its list is pushed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SbomMade {
    pub generator: SbomGenerator,
    /// The document's `sha256:` digest (the artifact's layer).
    pub digest: String,
    pub bytes: usize,
    pub ms: u64,
    #[serde(skip)]
    pub document: Vec<u8>,
}

impl Runner<'_> {
    /// Runs build `b`'s content steps. A check that finds files of another machine fails the
    /// build with `elf = "error"`; an SBOM that cannot be made fails it too (it was asked for).
    pub(super) fn content(
        &self,
        plan: &Plan,
        b: &Build,
        log: &Path,
    ) -> Result<BuildContent, Failure> {
        let settings = &plan.content.settings;
        let started = Instant::now();
        let mut podman = |kind: CommandKind, args: &[String]| -> Result<Option<Vec<u8>>, String> {
            let argv = Command::new(kind, &plan.podman, args);
            match self.command(&argv, log, true, None, When::Normal) {
                Ok(out) => Ok(Some(out)),
                Err(f) if f.attempt.as_deref().is_some_and(super::runner::not_found) => Ok(None),
                Err(f) => Err(f.reason),
            }
        };
        let check = steps::check_build(&mut podman, plan, b, &settings.check)
            .map_err(|e| Failure::new(format!("the content check of {}: {e}", b.id)))?;
        if let Some(why) = steps::failure(&check, &settings.check, b) {
            return Err(Failure::new(why));
        }
        let check_ms = started.elapsed().as_millis() as u64;
        let sbom = match settings.sbom {
            Some(sbom) if b.publish.is_none() => Some(self.sbom(plan, b, sbom, log)?),
            _ => None,
        };
        Ok(BuildContent {
            check: Some(check),
            check_ms,
            sbom,
        })
    }

    /// Mounts `b`'s image, makes its SBOM, unmounts it (also after a failure).
    fn sbom(&self, plan: &Plan, b: &Build, sbom: Sbom, log: &Path) -> Result<SbomMade, Failure> {
        let started = Instant::now();
        let podman = |kind: CommandKind, args: Vec<String>| Command::new(kind, &plan.podman, args);
        let fail =
            |what: &str, e: String| Failure::new(format!("the SBOM of {}: {what}: {e}", b.id));
        let raw = self
            .command(
                &podman(
                    CommandKind::ImageMount,
                    crate::sbom::mount_args(&b.local_image),
                ),
                log,
                true,
                None,
                When::Normal,
            )
            .map_err(|f| fail("podman image mount", f.reason))?;
        let root = PathBuf::from(String::from_utf8_lossy(&raw).trim());
        let made = self.document(plan, b, sbom, &root, log);
        let unmount = crate::sbom::unmount_args(&b.local_image);
        let unmounted = self.logged(&podman(CommandKind::ImageUnmount, unmount), log);
        let document = made.map_err(|e| fail("generating", e))?;
        unmounted.map_err(|f| fail("podman image unmount", f.reason))?;
        Ok(SbomMade {
            generator: sbom.generator,
            digest: crate::attach::digest_of(&document),
            bytes: document.len(),
            ms: started.elapsed().as_millis() as u64,
            document,
        })
    }

    fn document(
        &self,
        plan: &Plan,
        b: &Build,
        sbom: Sbom,
        root: &Path,
        log: &Path,
    ) -> Result<Vec<u8>, String> {
        match sbom.generator {
            SbomGenerator::Syft => {
                // syft's update check is off: a run must not reach the network for it.
                let env = crate::sbom::syft_env().map(|(k, v)| format!("{k}={v}"));
                let mut argv = Command::new(CommandKind::Syft, ["env"], env);
                argv.args(crate::sbom::syft_argv(root, sbom.format));
                self.command(&argv, log, true, None, When::Normal)
                    .map_err(|f| format!("{} ({})", f.reason, crate::sbom::SYFT_INSTALL))
            }
            SbomGenerator::Builtin | SbomGenerator::None => {
                let image = crate::sbom::Image {
                    name: plan
                        .manifests
                        .iter()
                        .find(|m| m.image == b.image)
                        .map_or_else(|| b.image.clone(), |m| m.repository.to_string()),
                    platform: b.platform.to_string(),
                    id: self.image_id(plan, b, log).unwrap_or_default(),
                    created: self.created(plan, b, log).unwrap_or_default(),
                };
                crate::sbom::builtin(root, &image, sbom.format).map_err(|e| e.to_string())
            }
        }
    }

    fn inspect_field(&self, plan: &Plan, b: &Build, field: &str, log: &Path) -> Option<String> {
        let argv = Command::new(
            CommandKind::ImageInspect,
            &plan.podman,
            ["image", "inspect", "--format", field, &b.local_image],
        );
        let out = self.command(&argv, log, true, None, When::Normal).ok()?;
        Some(String::from_utf8_lossy(&out).trim().to_string())
    }

    fn image_id(&self, plan: &Plan, b: &Build, log: &Path) -> Option<String> {
        self.inspect_field(plan, b, "{{.Id}}", log)
    }

    /// The image's `created`, in RFC 3339 (SPDX's creation time).
    fn created(&self, plan: &Plan, b: &Build, log: &Path) -> Option<String> {
        self.inspect_field(
            plan,
            b,
            "{{.Created.UTC.Format \"2006-01-02T15:04:05Z\"}}",
            log,
        )
    }
}

impl BuildContent {
    /// What the progress display warns of: files of another machine under `elf = "warn"`.
    pub fn warnings(&self) -> Vec<String> {
        match &self.check {
            Some(Outcome::Checked(counts)) => counts
                .mismatches
                .iter()
                .map(|m| format!("{}: {}, should be {}", m.path, m.found, m.expected))
                .collect(),
            _ => Vec::new(),
        }
    }
}
