//! A build's content steps in a run, right after its image is made and before it joins a list:
//! the ELF check of its own layers ([`crate::content`]) and its SBOM ([`crate::sbom`]), every
//! command through the runner and into the build's log.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::{Sbom, SbomGenerator};
use crate::content::layout::Layout;
use crate::content::steps::{self, Outcome};
use crate::plan::{Build, Command, CommandKind, Plan};
use crate::platform::Platform;
use crate::reference::Pinned;
use crate::supervise::When;

use super::attachments::Scratch;
use super::runner::{Failure, Runner};

/// A build's image copied into an OCI layout in a private scratch directory (removed when
/// dropped) the first time a content step needs it: from the registry (built on another
/// node), or saved by podman (a storage driver whose layers are not read in place). The
/// directory is made then too: most builds are read in place and never copy.
pub(super) struct Copied<'r, 'a> {
    runner: &'r Runner<'a>,
    /// Names the scratch directory.
    label: String,
    /// The copy into a given directory.
    command: Box<dyn Fn(&Path) -> Command + 'r>,
    log: &'r Path,
    /// The copy made: its scratch directory, and the layout in it.
    made: OnceCell<(Scratch, PathBuf)>,
}

impl<'r, 'a> Copied<'r, 'a> {
    /// `published`: the image in the registry (`REPO@DIGEST`), else `b`'s local image.
    fn new(
        runner: &'r Runner<'a>,
        plan: &'r Plan,
        b: &'r Build,
        published: Option<&Pinned>,
        log: &'r Path,
    ) -> Self {
        match published {
            // Reached the way the node's push reached it (a split runner's plan has no lists
            // to ask).
            Some(reference) => Self::from_registry(
                runner,
                plan,
                (&b.id, &reference.to_string()),
                b.publish.as_ref().is_some_and(|p| p.insecure),
                log,
            ),
            None => {
                let command = |dir: &Path| {
                    Command::new(
                        CommandKind::ImageSave,
                        &plan.podman,
                        crate::content::layout::save_args(&b.local_image, dir),
                    )
                };
                Self::with(runner, &b.id, Box::new(command), log)
            }
        }
    }

    /// The image `reference` (`REPO@DIGEST`) of the registry, reached over plain HTTP when
    /// `insecure`; `label` names the scratch directory.
    pub(super) fn from_registry(
        runner: &'r Runner<'a>,
        plan: &'r Plan,
        (label, reference): (&str, &str),
        insecure: bool,
        log: &'r Path,
    ) -> Self {
        let reference = reference.to_string();
        let command = move |dir: &Path| {
            crate::content::layout::copy_command(
                &reference,
                dir,
                insecure,
                plan.registries_conf.as_deref(),
            )
        };
        Self::with(runner, label, Box::new(command), log)
    }

    fn with(
        runner: &'r Runner<'a>,
        label: &str,
        command: Box<dyn Fn(&Path) -> Command + 'r>,
        log: &'r Path,
    ) -> Self {
        Self {
            runner,
            label: label.to_string(),
            command,
            log,
            made: OnceCell::new(),
        }
    }

    /// Copies the image, once: the layout's directory.
    fn copy(&self) -> Result<&Path, String> {
        if let Some((_, dir)) = self.made.get() {
            return Ok(dir);
        }
        let scratch = Scratch::new(&format!("content-{}", self.label))
            .map_err(|e| format!("a copy of {}: {e}", self.label))?;
        let dir = scratch.0.join("image");
        let command = (self.command)(&dir);
        self.runner
            .retrying(self.log, || self.runner.logged(&command, self.log))
            .map_err(|f| f.reason)?;
        Ok(&self.made.get_or_init(|| (scratch, dir)).1)
    }
}

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

impl SbomMade {
    /// `document`, made by `generator` since `started`.
    fn new(generator: SbomGenerator, document: Vec<u8>, started: Instant) -> Self {
        Self {
            generator,
            digest: crate::attach::digest_of(&document),
            bytes: document.len(),
            ms: started.elapsed().as_millis() as u64,
            document,
        }
    }
}

impl Runner<'_> {
    /// Runs build `b`'s content steps. A check that finds files of another machine fails the
    /// build with `elf = "error"`; an SBOM that cannot be made fails it too (it was asked for).
    /// `published`: built on another node, its image in the registry (`REPO@DIGEST`), which
    /// is read from there; `pushed`: the digests other nodes pushed, by build id.
    pub(super) fn content(
        &self,
        plan: &Plan,
        b: &Build,
        published: Option<&Pinned>,
        pushed: &HashMap<String, String>,
        log: &Path,
    ) -> Result<BuildContent, Failure> {
        let settings = &plan.content.settings;
        let started = Instant::now();
        // A split runner pushes its builds by digest, but their images are here.
        let published = published.filter(|_| plan.built_elsewhere(b));
        // Bases are described by the podman that built the image: the node's, for a build
        // there.
        let node_args = plan
            .nodes
            .iter()
            .find(|n| b.publish.is_some() && b.node.as_ref() == Some(&n.name))
            .map_or(&[][..], |n| n.podman_args.as_slice());
        let program: Vec<&String> = plan.podman.iter().chain(node_args).collect();
        let mut podman = |kind: CommandKind, args: &[String]| -> Result<Option<Vec<u8>>, String> {
            let argv = Command::new(kind, program.iter().copied(), args);
            match self.command(&argv, log, true, None, When::Normal) {
                Ok(out) => Ok(Some(out)),
                Err(f) if f.attempt.as_deref().is_some_and(super::runner::not_found) => Ok(None),
                Err(f) => Err(f.reason),
            }
        };
        let copied = Copied::new(self, plan, b, published, log);
        let mut copy = || copied.copy();
        let copy = steps::Copy { run: &mut copy };
        let source = match published {
            Some(_) => steps::Source::Registry(copy),
            None => steps::Source::Storage(Some(copy)),
        };
        let check = steps::check_build(&mut podman, plan, b, &settings.check, pushed, source)
            .map_err(|e| Failure::new(format!("the content check of {}: {e}", b.id)))?;
        if let Some(why) = steps::failure(&check, &settings.check, b) {
            return Err(Failure::new(why));
        }
        let check_ms = started.elapsed().as_millis() as u64;
        let sbom = match (settings.sbom, published) {
            (Some(sbom), None) => Some(self.sbom(plan, b, sbom, log)?),
            // From the registry: syft reads the copied layout, mab's own generator its layers.
            (Some(sbom), Some(_)) => {
                let image = (repository_name(plan, b), &b.platform);
                Some(self.sbom_of_layout(&b.id, image, sbom, &copied, log)?)
            }
            (None, _) => None,
        };
        Ok(BuildContent {
            check: Some(check),
            check_ms,
            sbom,
        })
    }

    /// The SBOM of an image read from a registry (built on another node, or an unchanged
    /// list's), from its copy in an OCI layout: syft's scan of the layout, or mab's own read of
    /// its layers. `image`: the repository the document names, and the platform.
    pub(super) fn sbom_of_layout(
        &self,
        label: &str,
        image: (String, &Platform),
        sbom: Sbom,
        pulled: &Copied,
        log: &Path,
    ) -> Result<SbomMade, Failure> {
        let started = Instant::now();
        let fail = |e: String| Failure::new(format!("the SBOM of {label}: {e}"));
        let dir = pulled.copy().map_err(fail)?;
        let document = match sbom.generator {
            SbomGenerator::Syft => {
                let env = crate::sbom::syft_env().map(|(k, v)| format!("{k}={v}"));
                let mut argv = Command::new(CommandKind::Syft, ["env"], env);
                argv.args(crate::sbom::syft_layout_argv(dir, sbom.format));
                self.command(&argv, log, true, None, When::Normal)
                    .map_err(|f| fail(format!("{} ({})", f.reason, crate::sbom::SYFT_INSTALL)))?
            }
            SbomGenerator::Builtin | SbomGenerator::None => {
                let layout = Layout::open(dir).map_err(fail)?;
                let image = sbom_image(image, &layout);
                crate::sbom::builtin_of_layout(&layout, &image, sbom.format).map_err(fail)?
            }
        };
        Ok(SbomMade::new(sbom.generator, document, started))
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
        Ok(SbomMade::new(sbom.generator, document, started))
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
                    name: repository_name(plan, b),
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

/// The name an SBOM gives `b`'s image: the repository its list (or its node's push) goes to.
fn repository_name(plan: &Plan, b: &Build) -> String {
    plan.manifests
        .iter()
        .find(|m| m.image == b.image)
        .map(|m| m.repository.to_string())
        .or_else(|| b.publish.as_ref().map(|p| p.repository.to_string()))
        .unwrap_or_else(|| b.image.clone())
}

/// What an SBOM says of the image (`name`, `platform`) copied from the registry into
/// `layout`: its id and creation time from its config, as `podman image inspect` of a local
/// image gives them.
fn sbom_image((name, platform): (String, &Platform), layout: &Layout) -> crate::sbom::Image {
    let created = layout
        .created
        .as_deref()
        .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
        .map(|t| humantime::format_rfc3339_seconds(t).to_string())
        .unwrap_or_default();
    crate::sbom::Image {
        name,
        platform: platform.to_string(),
        id: layout
            .config
            .strip_prefix("sha256:")
            .unwrap_or(&layout.config)
            .to_string(),
        created,
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
