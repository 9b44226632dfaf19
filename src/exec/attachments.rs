//! A list's attachments in a run: once its index is pushed (to the marker, or its first tag)
//! and before its other tags move, each platform image it built gets its SBOM (made after the
//! build) and its provenance statement, as OCI 1.1 artifacts ([`crate::attach`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::attach::missing::{self, AttachStep};
use crate::attach::{self, Access, Artifact, Commands, Referrer, Subject};
use crate::config::ProvenanceMode;
use crate::plan::{Build, Command, CommandKind, Manifest, Plan};
use crate::platform::Platform;
use crate::provenance::{self, BaseImage, Facts};

use super::runner::{Failure, Runner, not_found};

/// The artifacts of one platform image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttachedImage {
    pub platform: Platform,
    /// The image's digest: the artifacts' `subject`.
    pub digest: String,
    pub referrers: Vec<Referrer>,
    /// What the config asks for that an unchanged list's image lacks and the run did not add.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_added: Vec<NotAdded>,
}

/// An attachment an image lacks and the run did not add, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NotAdded {
    pub artifact_type: String,
    pub reason: String,
}

/// What a list's attachment step needs from the run: the SBOM documents made after its builds,
/// by build id.
pub(super) type Sboms = HashMap<String, Vec<u8>>;

/// [`attach::Commands`] through the run's runner (retried, logged, supervised).
pub(super) struct Logged<'r, 'a> {
    pub(super) runner: &'r Runner<'a>,
    pub(super) log: &'r Path,
}

impl Commands for Logged<'_, '_> {
    fn read(&mut self, command: &Command) -> Result<Option<Vec<u8>>, String> {
        self.runner.read(command, self.log).map_err(|f| f.reason)
    }

    fn run(&mut self, command: &Command) -> Result<(), String> {
        self.runner
            .retrying(self.log, || self.runner.logged(command, self.log))
            .map_err(|f| f.reason)
    }
}

/// The image `reference` (`REPO@DIGEST` of `m`'s repository) as the subject of attachments,
/// read from the registry (its manifest's media type and size go into each artifact's
/// `subject`).
fn subject_of(
    cmds: &mut Logged<'_, '_>,
    access: &Access,
    m: &Manifest,
    reference: &str,
) -> Result<Subject, String> {
    let raw = cmds
        .read(&access.inspect_argv(reference))?
        .ok_or_else(|| format!("{reference} is not in the registry"))?;
    Ok(Subject::of(m.repository.clone(), &raw))
}

/// A fresh private directory for an OCI layout, removed when dropped.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new(list: &str) -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let mut n = 0u64;
        loop {
            let dir = std::env::temp_dir().join(format!(
                "mab-attach-{}-{}-{n}",
                std::process::id(),
                list.replace('/', "+")
            ));
            // create (not create_all): fails rather than reuse what someone else put there.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(Self(dir)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Runner<'_> {
    /// Attaches the artifacts of list `m`'s platform `images` (`(platform, digest)` of the index
    /// just pushed); nothing when the config asks for none.
    pub(super) fn attach(
        &self,
        plan: &Plan,
        m: &Manifest,
        images: &[(Platform, String)],
        sboms: &Sboms,
        log: &Path,
    ) -> Result<Vec<AttachedImage>, Failure> {
        let settings = &plan.content.settings;
        if settings.sbom.is_none() && settings.provenance == ProvenanceMode::None {
            return Ok(Vec::new());
        }
        let access = Access {
            insecure: m.insecure,
            registries_conf: plan.registries_conf.clone(),
            limits: self.registry,
        };
        let index = plan.build_index();
        let podman_version = self.podman_version(plan, log);
        let git = crate::git::GitInfo::read(&plan.workdir);
        let mut out = Vec::new();
        for (platform, digest) in images {
            // The list's builds are its platforms', in order; external platforms have none.
            let Some(build) = m
                .platforms
                .iter()
                .zip(&m.depends_on)
                .find(|(p, _)| *p == platform)
                .and_then(|(_, id)| index.get(id.as_str()))
                .map(|&i| &plan.builds[i])
            else {
                continue;
            };
            let fail = |e: String| {
                Failure::new(format!(
                    "attaching to the {platform} image of {}: {e}",
                    m.image
                ))
            };
            let mut cmds = Logged { runner: self, log };
            let reference = format!("{}@{digest}", m.repository);
            let subject = subject_of(&mut cmds, &access, m, &reference).map_err(fail)?;
            let mut artifacts = Vec::new();
            if let (Some(sbom), Some(doc)) = (settings.sbom, sboms.get(&build.id)) {
                artifacts.push(crate::sbom::artifact(sbom, doc.clone()));
            }
            let bases = self.base_digests(plan, build, log);
            let argv = build.argv.argv();
            let facts = Facts {
                repository: m.repository.as_str(),
                digest,
                platform: &platform.to_string(),
                bases,
                git: git.as_ref().map(|g| (g.sha.as_str(), g.remote.as_deref())),
                mab_version: env!("CARGO_PKG_VERSION"),
                podman_version: podman_version.as_deref(),
                argv: &argv,
                // mab refuses credentials as build args (they go in as `--secret`), so none of
                // these is one.
                build_args: build
                    .build_args
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                input_digest: input_digest(m, build),
            };
            if let Some(statement) = provenance::statement(settings.provenance, &facts) {
                artifacts.push(Artifact {
                    artifact_type: provenance::MEDIA_TYPE.into(),
                    bytes: statement,
                    annotations: [(attach::GENERATOR.to_string(), "mab".to_string())].into(),
                });
            }
            let scratch = Scratch::new(&m.image).map_err(|e| fail(e.to_string()))?;
            let referrers =
                attach::push(&mut cmds, &access, &subject, &artifacts, &scratch.0).map_err(fail)?;
            out.push(AttachedImage {
                platform: platform.clone(),
                digest: digest.clone(),
                referrers,
                not_added: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Attaches to one platform image of unchanged list `m` what the config asks for and it
    /// lacks: its SBOM, made from the image in the registry (mab's own generator reads its
    /// layers, syft the copied layout). Provenance is reported as not added
    /// ([`missing::NOT_PROVENANCE`]). Nothing is made when everything is there.
    pub(super) fn attach_missing(
        &self,
        plan: &Plan,
        m: &Manifest,
        step: &AttachStep,
        log: &Path,
    ) -> Result<AttachedImage, Failure> {
        let settings = &plan.content.settings;
        let AttachStep { platform, digest } = step;
        let fail = |e: String| {
            Failure::new(format!(
                "attaching what its {platform} image lacks to {}: {e}",
                m.image
            ))
        };
        let access = Access {
            insecure: m.reach().insecure(&m.repository),
            registries_conf: plan.registries_conf.clone(),
            limits: self.registry,
        };
        let mut cmds = Logged { runner: self, log };
        let reference = format!("{}@{digest}", m.repository);
        let subject = subject_of(&mut cmds, &access, m, &reference).map_err(fail)?;
        let existing = attach::referrers(&mut cmds, &access, &subject).map_err(fail)?;
        let has = |kind: &str| existing.iter().any(|r| r.artifact_type == kind);
        let mut artifacts = Vec::new();
        let mut not_added = Vec::new();
        if let Some(sbom) = settings.sbom.filter(|s| !has(s.format.media_type())) {
            let label = format!("{}-{}", m.image, platform.to_string().replace('/', "-"));
            let copied = super::content::Copied::from_registry(
                self,
                plan,
                (&label, &reference),
                access.insecure,
                log,
            );
            let image = (m.repository.to_string(), platform);
            let made = self.sbom_of_layout(&label, image, sbom, &copied, log)?;
            note(
                log,
                &format!(
                    "mab: {reference} has no {}: made from the registry's image in {} ms",
                    sbom.format.media_type(),
                    made.ms
                ),
            );
            artifacts.push(crate::sbom::artifact(sbom, made.document));
        }
        if settings.provenance != ProvenanceMode::None && !has(provenance::MEDIA_TYPE) {
            note(
                log,
                &format!(
                    "mab: {reference} has no provenance, not added: {}",
                    missing::NOT_PROVENANCE
                ),
            );
            not_added.push(NotAdded {
                artifact_type: provenance::MEDIA_TYPE.into(),
                reason: missing::NOT_PROVENANCE.into(),
            });
        }
        let mut referrers = existing;
        if !artifacts.is_empty() {
            let scratch = Scratch::new(&m.image).map_err(|e| fail(e.to_string()))?;
            let pushed =
                attach::push(&mut cmds, &access, &subject, &artifacts, &scratch.0).map_err(fail)?;
            referrers.extend(pushed.into_iter().filter(|r| r.new));
        }
        Ok(AttachedImage {
            platform: platform.clone(),
            digest: digest.clone(),
            referrers,
            not_added,
        })
    }

    fn podman_version(&self, plan: &Plan, log: &Path) -> Option<String> {
        let argv = Command::new(
            CommandKind::Version,
            &plan.podman,
            ["version", "--format", "{{.Client.Version}}"],
        );
        let out = self
            .command(&argv, log, true, None, crate::supervise::When::Normal)
            .ok()?;
        Some(String::from_utf8_lossy(&out).trim().to_string())
    }

    /// The images `build` read from outside the run, by the digest podman has for them: a
    /// registry's manifest, a local list's, else a local image's id.
    fn base_digests(&self, plan: &Plan, build: &Build, log: &Path) -> Vec<BaseImage> {
        let node_args = build
            .inputs
            .bases
            .first()
            .map_or(Vec::new(), |b| b.node_args.clone());
        let podman = |kind: CommandKind, args: &[&str]| -> Command {
            Command::new(
                kind,
                plan.podman.iter().chain(&node_args),
                args.iter().copied(),
            )
        };
        let read = |argv: Command| match self.command(
            &argv,
            log,
            true,
            None,
            crate::supervise::When::Normal,
        ) {
            Ok(out) => Some(out),
            Err(f) if f.attempt.as_deref().is_some_and(not_found) => None,
            Err(_) => None,
        };
        build
            .inputs
            .bases
            .iter()
            .filter_map(|b| {
                let digest = match crate::reference::pinned_digest(&b.reference) {
                    Some(d) => d.to_string(),
                    None => match read(podman(
                        CommandKind::ManifestInspect,
                        &["manifest", "inspect", &b.reference],
                    )) {
                        Some(raw) => attach::digest_of(&raw),
                        None => {
                            let id = read(podman(
                                CommandKind::ImageInspect,
                                &["image", "inspect", "--format", "{{.Id}}", &b.reference],
                            ))?;
                            crate::reference::sha256_hex(String::from_utf8_lossy(&id).trim())?
                                .to_string()
                        }
                    },
                };
                Some(BaseImage {
                    reference: b.reference.clone(),
                    digest,
                })
            })
            .collect()
    }
}

/// Appends `line` to the list's log: what a step decided without running a command.
fn note(log: &Path, line: &str) {
    use std::io::Write as _;
    let _ = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .and_then(|mut f| writeln!(f, "{line}"));
}

/// The input digest the list's `manifest add` of `build`'s image annotates its entry with.
fn input_digest<'m>(m: &'m Manifest, build: &Build) -> Option<&'m str> {
    // The add of this build's image, found by its build (issue 19: never by position).
    let add = m.assemble.adds.iter().find(|a| a.build == build.id)?;
    add.input_digest.as_deref()
}
