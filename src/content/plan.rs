//! What the plan shows of `[check]`, `[sbom]` and `[provenance]`: the settings, what runs after
//! each build (the check, the SBOM) and what each list attaches to each platform image.
//!
//! A config without these tables plans as before (the field is left out of the JSON), while the
//! run still checks every build with the defaults (`elf = "error"`).

use serde::Serialize;

use crate::config::{CheckMode, Content, ProvenanceMode, Sbom, SbomGenerator};
use crate::plan::{Build, Manifest};
use crate::platform::Platform;

/// Stands in a syft command for the root of the image podman mounts.
pub const MOUNTED_ROOT: &str = "<root of its mounted image>";

#[derive(Debug, Clone, Default, Serialize)]
pub struct ContentPlan {
    /// The settings the run applies (defaults included).
    #[serde(skip)]
    pub settings: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<ShownCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<Sbom>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<ProvenanceMode>,
    /// What runs after each build, by build id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub builds: Vec<BuildSteps>,
    /// What each list attaches, once its index is pushed and before its tags move.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<ListSteps>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShownCheck {
    pub elf: CheckMode,
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildSteps {
    pub build: String,
    pub steps: Vec<BuildStep>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum BuildStep {
    /// The ELF check of the files its own layers hold.
    Check { image: String, elf: CheckMode },
    /// The SBOM of the image: the builtin scan, or syft's command, of the mounted root.
    Sbom {
        image: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        argv: Option<Vec<String>>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ListSteps {
    pub image: String,
    pub attach: Vec<Attach>,
}

/// Artifacts attached to one platform image of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Attach {
    pub platform: Platform,
    /// The referrers fallback index: `REPO:sha256-<hex of its image's digest>`.
    pub index: String,
    /// Their media types.
    pub artifacts: Vec<String>,
}

impl ContentPlan {
    /// Whether the config had none of the tables: the plan's JSON leaves it out.
    pub fn unconfigured(&self) -> bool {
        !self.settings.configured()
    }

    /// The steps `settings` add to `builds` and `manifests`.
    pub fn new(settings: &Content, builds: &[Build], manifests: &[Manifest]) -> Self {
        let mut plan = Self {
            settings: settings.clone(),
            ..Self::default()
        };
        if !settings.configured() {
            return plan;
        }
        let check = settings.check.elf != CheckMode::Off;
        plan.check = settings.check.configured.then(|| ShownCheck {
            elf: settings.check.elf,
            allow: settings.check.allow.clone(),
        });
        plan.sbom = settings.sbom;
        plan.provenance =
            (settings.provenance != ProvenanceMode::None).then_some(settings.provenance);
        for b in builds {
            let mut steps = Vec::new();
            if check {
                steps.push(BuildStep::Check {
                    image: b.local_image.clone(),
                    elf: settings.check.elf,
                });
            }
            if let Some(sbom) = settings.sbom {
                let argv = (sbom.generator == SbomGenerator::Syft).then(|| {
                    crate::sbom::syft_argv(std::path::Path::new(MOUNTED_ROOT), sbom.format)
                });
                steps.push(BuildStep::Sbom {
                    image: b.local_image.clone(),
                    argv,
                });
            }
            if !steps.is_empty() {
                plan.builds.push(BuildSteps {
                    build: b.id.clone(),
                    steps,
                });
            }
        }
        let mut artifacts = Vec::new();
        if let Some(sbom) = settings.sbom {
            artifacts.push(sbom.format.media_type().to_string());
        }
        if settings.provenance != ProvenanceMode::None {
            artifacts.push(crate::provenance::MEDIA_TYPE.to_string());
        }
        if artifacts.is_empty() {
            return plan;
        }
        for m in manifests.iter().filter(|m| m.push) {
            let attach = m
                .platforms
                .iter()
                .filter(|p| !m.external.iter().any(|e| &e.platform == *p))
                .map(|p| Attach {
                    platform: p.clone(),
                    index: format!("{}:sha256-<hex of its {p} image's digest>", m.repository),
                    artifacts: artifacts.clone(),
                })
                .collect();
            plan.lists.push(ListSteps {
                image: m.image.clone(),
                attach,
            });
        }
        plan
    }
}
