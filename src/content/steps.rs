//! The content check of one build of a run: which images could be its base, their layers and
//! the built image's, and the judgement of the files its own layers hold.
//!
//! Commands go through the caller (`podman`: the plan's program and the build's node options
//! come first), so a run sends them through its supervised runner and logs them.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::check::{Checker, Counts};
use super::elf::Machine;
use super::layers::{self, Image};
use super::layout::Layout;
use crate::config::{Check, CheckMode};
use crate::plan::{Build, CommandKind, Plan};
use crate::platform::Platform;

/// Runs one podman command of a kind (arguments after the program and its global options) and
/// returns its output, `Ok(None)` when podman says the image does not exist.
pub type Podman<'a> = dyn FnMut(CommandKind, &[String]) -> Result<Option<Vec<u8>>, String> + 'a;

/// How a build's check went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Outcome {
    /// Checked: the counts (mismatches included when `elf = "warn"`).
    Checked(Counts),
    /// Not checked, and why (`elf = "off"`, a remote node, a storage driver not read).
    Skipped { reason: String },
}

/// An image the build may be based on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Candidate {
    /// A local image by name (a dependency's build).
    Image(String),
    /// A reference read for `platform`: a local list's entry, or an image.
    Read(String, Platform),
}

/// A copy of the build's image into an OCI layout, made by `run` when first needed.
pub struct Copy<'a> {
    /// Makes the copy (once), and says where its OCI layout is.
    pub run: &'a mut dyn FnMut() -> Result<&'a Path, String>,
}

/// Where the build's image is read from.
pub enum Source<'a> {
    /// This machine's podman storage: overlay's layer directories, or with another storage
    /// driver the image saved as an OCI layout (`Some`: `podman save --format oci-dir`).
    Storage(Option<Copy<'a>>),
    /// The registry its node pushed it to.
    Registry(Copy<'a>),
}

/// What the build may be `FROM`: its dependencies' images (by the digest their node pushed
/// when built on another node than this build's, as the build read them) and the images it
/// reads. `pushed`: build id → digest.
fn candidates(plan: &Plan, build: &Build, pushed: &HashMap<String, String>) -> Vec<Candidate> {
    let index = plan.build_index();
    let deps = build
        .depends_on
        .iter()
        .filter_map(|d| Some((d, &plan.builds[*index.get(d.as_str())?])))
        .map(|(id, dep)| {
            let repository = plan
                .manifests
                .iter()
                .find(|m| m.image == dep.image)
                .map(|m| &m.repository);
            match (pushed.get(id), repository) {
                (Some(digest), Some(repo)) if dep.node != build.node => {
                    Candidate::Image(format!("{repo}@{digest}"))
                }
                _ => Candidate::Image(dep.local_image.clone()),
            }
        });
    let bases = build
        .inputs
        .bases
        .iter()
        .map(|b| Candidate::Read(b.reference.clone(), b.platform.clone()));
    deps.chain(bases).collect()
}

/// `REPO` of `REPO:TAG` or `REPO@DIGEST` (a port's colon is not a tag's).
fn repository_of(reference: &str) -> &str {
    crate::reference::name_of(reference)
}

/// The digest of `platform`'s entry in a local manifest list, as `podman manifest inspect`
/// prints it.
fn entry_of(list: &[u8], platform: &Platform) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(list).ok()?;
    v["manifests"].as_array()?.iter().find_map(|m| {
        let p = &m["platform"];
        let matches = p["os"] == platform.os()
            && p["architecture"] == platform.arch()
            && platform
                .variant()
                .is_none_or(|v| p["variant"].as_str() == Some(v));
        matches
            .then(|| m["digest"].as_str().map(String::from))
            .flatten()
    })
}

/// The name podman finds `candidate`'s image for the build's platform under.
fn resolve(podman: &mut Podman, candidate: &Candidate) -> Result<String, String> {
    match candidate {
        Candidate::Image(name) => Ok(name.clone()),
        Candidate::Read(reference, platform) => {
            let list = ["manifest", "inspect", reference.as_str()].map(String::from);
            Ok(
                match podman(CommandKind::ManifestInspect, &list).ok().flatten() {
                    Some(raw) => match entry_of(&raw, platform) {
                        Some(digest) => format!("{}@{digest}", repository_of(reference)),
                        None => reference.clone(),
                    },
                    None => reference.clone(),
                },
            )
        }
    }
}

/// Inspects `names`; one that podman lacks is left out rather than failing the others.
fn inspect(podman: &mut Podman, names: &[String]) -> Result<Vec<Image>, String> {
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut inspect =
        |names: &[&str]| podman(CommandKind::ImageInspect, &layers::inspect_args(names));
    if let Some(raw) = inspect(&all).ok().flatten() {
        return layers::parse_inspect(&raw);
    }
    let mut found = Vec::new();
    for name in names {
        if let Some(raw) = inspect(&[name]).ok().flatten() {
            found.extend(layers::parse_inspect(&raw)?);
        }
    }
    Ok(found)
}

/// Checks the image `build` made: its `local_image` in this machine's storage, or, built on
/// another node, its image in the registry (`source`). `podman` runs where the build ran (its
/// bases are there); `pushed` has the digests other nodes pushed, by build id.
pub fn check_build(
    podman: &mut Podman,
    plan: &Plan,
    build: &Build,
    settings: &Check,
    pushed: &HashMap<String, String>,
    source: Source,
) -> Result<Outcome, String> {
    let skip = |reason: String| Ok(Outcome::Skipped { reason });
    if settings.elf == CheckMode::Off {
        return skip("[check] elf = \"off\"".into());
    }
    let Some(expected) = Machine::of(&build.platform) else {
        return skip(format!("mab knows no ELF machine for {}", build.platform));
    };
    let mut bases = Vec::new();
    for c in candidates(plan, build, pushed) {
        bases.push(resolve(podman, &c)?);
    }
    match source {
        Source::Registry(copy) => check_pushed(podman, &bases, expected, settings, copy),
        Source::Storage(_) if build.publish.is_some() => skip(format!(
            "built on node {}: its layers are not read from there",
            build.node.as_deref().unwrap_or("?")
        )),
        Source::Storage(save) => check_local(podman, build, &bases, expected, settings, save),
    }
}

/// A build on another node: its image as the registry has it, its bases as its node's podman
/// describes them.
fn check_pushed(
    podman: &mut Podman,
    bases: &[String],
    expected: Machine,
    settings: &Check,
    copy: Copy,
) -> Result<Outcome, String> {
    let layout = Layout::open((copy.run)()?)?;
    let bases = if bases.is_empty() {
        Vec::new()
    } else {
        match inspect(podman, bases) {
            Ok(images) => images,
            Err(e) => {
                return Ok(Outcome::Skipped {
                    reason: format!("podman image inspect: {e}"),
                });
            }
        }
    };
    let base_layers: Vec<&[String]> = bases.iter().map(|b| b.layers.as_slice()).collect();
    let own = layers::own_layers(&layout.diff_ids, &base_layers);
    let mut checker = Checker::new(expected, &settings.globs);
    layout.walk_top(own, &mut checker)?;
    Ok(Outcome::Checked(checker.finish()))
}

/// A build on this machine: its image's own layers, read from overlay's directories, or from
/// the image saved as an OCI layout with another storage driver.
fn check_local(
    podman: &mut Podman,
    build: &Build,
    bases: &[String],
    expected: Machine,
    settings: &Check,
    save: Option<Copy>,
) -> Result<Outcome, String> {
    let skip = |reason: String| Ok(Outcome::Skipped { reason });
    let mut names = vec![build.local_image.clone()];
    names.extend(bases.iter().cloned());
    // A podman that cannot describe the image (a stand-in, an old version) leaves it unchecked,
    // said so in the report, rather than failing a build that podman says succeeded.
    let images = match inspect(podman, &names) {
        Ok(images) => images,
        Err(e) => return skip(format!("podman image inspect: {e}")),
    };
    let Some((image, bases)) = images.split_first() else {
        return skip(format!(
            "podman image inspect found no {}",
            build.local_image
        ));
    };
    let base_layers: Vec<&[String]> = bases.iter().map(|b| b.layers.as_slice()).collect();
    let own = layers::own_layers(&image.layers, &base_layers);
    let mut checker = Checker::new(expected, &settings.globs);
    if image.driver == "overlay" {
        layers::check_overlay(image, own, &mut checker).map_err(|e| e.to_string())?;
        return Ok(Outcome::Checked(checker.finish()));
    }
    // vfs, btrfs, zfs: no layer directories to read on their own; podman writes the image out.
    let Some(save) = save else {
        return skip(format!(
            "podman's storage driver is {}: only overlay layers are read",
            image.driver
        ));
    };
    let layout = Layout::open((save.run)()?)?;
    if layout.diff_ids != image.layers {
        return Err(format!(
            "podman saved {} with other layers than it describes",
            build.local_image
        ));
    }
    layout.walk_top(own, &mut checker)?;
    Ok(Outcome::Checked(checker.finish()))
}

/// Whether `outcome` fails the build under `settings`, and the message that says why.
pub fn failure(outcome: &Outcome, settings: &Check, build: &Build) -> Option<String> {
    let Outcome::Checked(counts) = outcome else {
        return None;
    };
    if settings.elf != CheckMode::Error || counts.mismatches.is_empty() {
        return None;
    }
    let mut text = format!(
        "{} ELF file(s) in the {} image are of another machine:",
        counts.mismatches.len(),
        build.platform
    );
    for m in &counts.mismatches {
        text.push_str(&format!(
            "\n  {}: {}, should be {}",
            m.path, m.found, m.expected
        ));
    }
    text.push_str(
        "\n  (a file that may be so goes in [check] allow; [check] elf = \"warn\" only reports)",
    );
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_of_keeps_a_registry_port() {
        assert_eq!(
            repository_of("localhost/x/busybox:latest"),
            "localhost/x/busybox"
        );
        assert_eq!(repository_of("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(repository_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000/app");
        assert_eq!(repository_of("r/app@sha256:ab"), "r/app");
    }

    #[test]
    fn a_list_entry_is_found_by_platform_and_variant() {
        let list = br#"{"manifests":[
            {"digest":"sha256:a","platform":{"os":"linux","architecture":"amd64"}},
            {"digest":"sha256:v6","platform":{"os":"linux","architecture":"arm","variant":"v6"}},
            {"digest":"sha256:v7","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}"#;
        let p = |s: &str| s.parse::<Platform>().unwrap();
        assert_eq!(
            entry_of(list, &p("linux/arm/v7")).as_deref(),
            Some("sha256:v7")
        );
        assert_eq!(
            entry_of(list, &p("linux/amd64")).as_deref(),
            Some("sha256:a")
        );
        assert_eq!(entry_of(list, &p("linux/s390x")), None);
    }
}
