//! OCI 1.1 artifacts attached to an image: an SBOM or a provenance statement, stored as an
//! image manifest whose `subject` is the image's digest, and found through the referrers
//! fallback: an index at the tag `sha256-<hex of the image's digest>` listing them.
//!
//! Measured here: docker-registry 2.8.2 has no referrers API (`GET /v2/REPO/referrers/DIGEST`
//! answers 404) but stores a manifest with `subject` byte for byte; a registry that has the
//! API indexes such a manifest by its `subject` on push, so pushing it is all the API needs,
//! and the fallback index is kept as well, which every client reads. skopeo 1.9.3 copies an OCI
//! layout holding the index and the artifacts with `--all --preserve-digests`, unchanged, only
//! if it can re-serialize the index to the same bytes: c/image 5.23 knows no `artifactType` in
//! a descriptor and refuses ("Manifest list must be converted ... Instructed to preserve
//! digests") when one is there. So the index's entries carry the artifact type in the
//! annotation [`ARTIFACT_TYPE`] instead, and the index is written as Go's encoder writes it
//! (fields in c/image's order, map keys sorted: `BTreeMap`, not `oci-spec`'s `HashMap`).
//!
//! The list's own index is never touched: artifacts hang off the platform images' digests.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::plan::{Command, CommandKind};
use crate::reference::Repository;

pub mod api;
pub mod missing;

pub const IMAGE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The empty config of an artifact manifest (the OCI 1.1 image spec's guidance).
pub const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_BYTES: &[u8] = b"{}";
/// The annotation of a fallback index entry that says what its artifact is.
pub const ARTIFACT_TYPE: &str = "dev.mab.artifact-type";
/// The annotation of an artifact that names what made it (`syft`, `builtin`, `mab`).
pub const GENERATOR: &str = "dev.mab.generator";

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    crate::reference::digest_of(bytes).to_string()
}

/// The tag of the referrers fallback index for `digest` (`sha256:abc` -> `sha256-abc`).
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// A content descriptor, serialized in c/image's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    fn of(media_type: &str, bytes: &[u8]) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest: digest_of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            data: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// The image an artifact describes: its manifest's digest, size and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub repository: Repository,
    pub descriptor: Descriptor,
}

impl Subject {
    /// The image whose manifest is `raw` (as the registry serves it) in `repository`.
    pub fn of(repository: Repository, raw: &[u8]) -> Self {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Typed {
            media_type: Option<String>,
        }
        let media_type = serde_json::from_slice::<Typed>(raw)
            .ok()
            .and_then(|t| t.media_type)
            .unwrap_or_else(|| IMAGE_MANIFEST.to_string());
        Self {
            repository,
            descriptor: Descriptor::of(&media_type, raw),
        }
    }

    /// The image `digest` in `repository`, to read what is attached to it (its manifest's media
    /// type and size are not known: never attach to it).
    pub fn named(repository: Repository, digest: &str) -> Self {
        let mut descriptor = Descriptor::of(IMAGE_MANIFEST, b"");
        descriptor.digest = digest.to_string();
        Self {
            repository,
            descriptor,
        }
    }

    pub fn digest(&self) -> &str {
        &self.descriptor.digest
    }

    /// `REPO:sha256-<hex>`.
    pub fn fallback_reference(&self) -> String {
        format!("{}:{}", self.repository, fallback_tag(self.digest()))
    }
}

/// A document to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest's `artifactType`, also the media type of its one layer, e.g.
    /// `application/vnd.cyclonedx+json`.
    pub artifact_type: String,
    pub bytes: Vec<u8>,
    /// On the manifest and on its entry in the fallback index.
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactManifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'a str,
    config: Descriptor,
    layers: [Descriptor; 1],
    subject: &'a Descriptor,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

/// An artifact's manifest, ready to push: its bytes and the blobs it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub manifest: Vec<u8>,
    /// Its entry in the fallback index.
    pub descriptor: Descriptor,
    /// (digest, bytes) of its config and layer.
    pub blobs: Vec<(String, Vec<u8>)>,
}

/// The manifest of `artifact` about `subject`: deterministic, so the same document about the
/// same image is the same digest.
pub fn manifest(subject: &Subject, artifact: &Artifact) -> Built {
    let mut config = Descriptor::of(EMPTY, EMPTY_BYTES);
    config.data = Some("e30=".into());
    let mut layer = Descriptor::of(&artifact.artifact_type, &artifact.bytes);
    // The file `oras pull` writes the document to; without one it writes nothing.
    layer
        .annotations
        .insert(TITLE.into(), file_name(&artifact.artifact_type));
    let body = ArtifactManifest {
        schema_version: 2,
        media_type: IMAGE_MANIFEST,
        artifact_type: &artifact.artifact_type,
        config: config.clone(),
        layers: [layer.clone()],
        subject: &subject.descriptor,
        annotations: &artifact.annotations,
    };
    let manifest = serde_json::to_vec(&body).expect("a manifest serializes");
    let mut descriptor = Descriptor::of(IMAGE_MANIFEST, &manifest);
    descriptor.annotations = artifact.annotations.clone();
    descriptor
        .annotations
        .insert(ARTIFACT_TYPE.into(), artifact.artifact_type.clone());
    Built {
        manifest,
        descriptor,
        blobs: vec![
            (config.digest, EMPTY_BYTES.to_vec()),
            (layer.digest, artifact.bytes.clone()),
        ],
    }
}

/// The OCI annotation that names a layer's file.
const TITLE: &str = "org.opencontainers.image.title";

/// A document's file name, from its type: `application/vnd.cyclonedx+json` → `cyclonedx.json`,
/// `application/spdx+json` → `spdx.json`, `application/vnd.in-toto+json` → `in-toto.json`.
fn file_name(artifact_type: &str) -> String {
    let subtype = artifact_type.rsplit('/').next().unwrap_or(artifact_type);
    subtype.trim_start_matches("vnd.").replace(['+', '/'], ".")
}

/// An OCI image index, as c/image 5.23 writes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    fn empty() -> Self {
        Self {
            schema_version: 2,
            media_type: Some(IMAGE_INDEX.into()),
            manifests: Vec::new(),
            annotations: BTreeMap::new(),
        }
    }

    pub fn parse(raw: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(raw).map_err(|e| format!("the referrers index: {e}"))
    }

    /// The bytes skopeo can push unchanged: no `artifactType` in an entry.
    fn to_bytes(&self) -> Vec<u8> {
        let mut plain = self.clone();
        for m in &mut plain.manifests {
            m.artifact_type = None;
        }
        serde_json::to_vec(&plain).expect("an index serializes")
    }
}

/// An artifact attached to an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Referrer {
    /// The artifact manifest's digest: what a signature of it signs.
    pub digest: String,
    /// `REPO@<digest>`.
    pub reference: String,
    pub artifact_type: String,
    /// Whether this run pushed it (false: it was there).
    pub new: bool,
}

impl Referrer {
    fn of(repository: &Repository, d: &Descriptor, new: bool) -> Self {
        Self {
            digest: d.digest.clone(),
            reference: format!("{repository}@{}", d.digest),
            artifact_type: d
                .annotations
                .get(ARTIFACT_TYPE)
                .or(d.artifact_type.as_ref())
                .cloned()
                .unwrap_or_default(),
            new,
        }
    }
}

/// How skopeo reaches the registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub insecure: bool,
    /// skopeo 1.9 ignores `CONTAINERS_REGISTRIES_CONF`: passed on as `--registries-conf`.
    pub registries_conf: Option<OsString>,
    /// The run's registry deadline and stall limit, which mab's own requests (the referrers
    /// API's) keep as the supervisor keeps them for skopeo's; unset: their defaults.
    pub limits: crate::supervise::Limits,
}

impl Access {
    fn args(&self, tls: &str) -> Vec<String> {
        let mut a = Vec::new();
        if self.insecure {
            a.push(format!("--{tls}=false"));
        }
        if let Some(conf) = &self.registries_conf {
            a.extend([
                "--registries-conf".into(),
                conf.to_string_lossy().into_owned(),
            ]);
        }
        a
    }

    /// `skopeo inspect --raw docker://REFERENCE`.
    pub fn inspect_argv(&self, reference: &str) -> Command {
        let mut c = Command::new(CommandKind::Inspect, ["skopeo"], ["inspect", "--raw"]);
        c.args(self.args("tls-verify")).registry(reference);
        c
    }

    /// A copy between `reference` in the registry and `layout` (`oci:DIR:TAG`): from the
    /// registry when `pull`, else to it.
    fn copy_argv(&self, reference: String, layout: String, pull: bool) -> Command {
        let words = ["copy", "--all", "--preserve-digests", "--quiet"];
        let mut c = Command::new(CommandKind::Copy, ["skopeo"], words);
        c.args(self.args(if pull {
            "src-tls-verify"
        } else {
            "dest-tls-verify"
        }));
        match pull {
            true => c.registry(reference).arg(layout),
            false => c.arg(layout).registry(reference),
        };
        c
    }
}

/// What runs the registry commands: the run's supervised runner, or a plain process.
pub trait Commands {
    /// Runs `command` and returns its output; `Ok(None)` when the registry says the reference
    /// does not exist.
    fn read(&mut self, command: &Command) -> Result<Option<Vec<u8>>, String>;
    /// Runs `command`, which must succeed.
    fn run(&mut self, command: &Command) -> Result<(), String>;
}

/// The artifacts attached to `subject`'s digest: the registry's referrers API's answer when it
/// has the API, else its fallback index (none: no index).
pub fn referrers(
    cmds: &mut dyn Commands,
    access: &Access,
    subject: &Subject,
) -> Result<Vec<Referrer>, String> {
    let index = match api::probe(access, subject) {
        api::Answer::Index(index) => Some(index),
        api::Answer::Absent(_) => read_index(cmds, access, subject)?,
    };
    Ok(index
        .map(|i| {
            i.manifests
                .iter()
                .map(|d| Referrer::of(&subject.repository, d, false))
                .collect()
        })
        .unwrap_or_default())
}

fn read_index(
    cmds: &mut dyn Commands,
    access: &Access,
    subject: &Subject,
) -> Result<Option<Index>, String> {
    cmds.read(&access.inspect_argv(&subject.fallback_reference()))?
        .map(|raw| Index::parse(&raw))
        .transpose()
}

/// Whether an index entry stands for the artifact `new` describes: the same manifest, or one
/// of the same type by the same generator. An SBOM generator that stamps each document with a
/// time or a serial number (syft) makes a new digest on every run; one per kind and generator
/// is what a consumer wants, so a rebuilt image of the same digest gets nothing new.
fn same_kind(entry: &Descriptor, new: &Descriptor) -> bool {
    let get = |d: &Descriptor, k: &str| d.annotations.get(k).cloned();
    entry.digest == new.digest
        || (get(entry, ARTIFACT_TYPE) == get(new, ARTIFACT_TYPE)
            && get(entry, GENERATOR).is_some()
            && get(entry, GENERATOR) == get(new, GENERATOR))
}

/// Attaches `artifacts` to `subject`: pushes the ones it does not have yet, through an OCI
/// layout in `work` (a fresh directory). A registry with the referrers API lists them by their
/// `subject` by itself: each is pushed by digest. Without it, the fallback index is pushed
/// too, listing them all. Returns every artifact's [`Referrer`], `new` for those pushed now.
pub fn push(
    cmds: &mut dyn Commands,
    access: &Access,
    subject: &Subject,
    artifacts: &[Artifact],
    work: &Path,
) -> Result<Vec<Referrer>, String> {
    let (existing, api) = match api::probe(access, subject) {
        api::Answer::Index(index) => (Some(index), true),
        api::Answer::Absent(_) => (read_index(cmds, access, subject)?, false),
    };
    let mut index = existing.clone().unwrap_or_else(Index::empty);
    let built: Vec<Built> = artifacts.iter().map(|a| manifest(subject, a)).collect();
    let mut fresh: Vec<&Built> = Vec::new();
    let mut out = Vec::with_capacity(built.len());
    for b in &built {
        match index.manifests.iter().find(|m| same_kind(m, &b.descriptor)) {
            Some(there) => out.push(Referrer::of(&subject.repository, there, false)),
            None => {
                out.push(Referrer::of(&subject.repository, &b.descriptor, true));
                fresh.push(b);
            }
        }
    }
    if fresh.is_empty() {
        return Ok(out);
    }
    let layout = Layout::create(work).map_err(|e| format!("{}: {e}", work.display()))?;
    if api {
        return push_by_digest(cmds, access, subject, &fresh, (&layout, work)).map(|()| out);
    }
    let tag = fallback_tag(subject.digest());
    if existing.is_some() {
        // The layout must hold every entry of the index skopeo pushes: the ones already
        // there come from the registry (small: documents and an empty config).
        cmds.run(&access.copy_argv(
            subject.fallback_reference(),
            format!("oci:{}:{tag}", work.display()),
            true,
        ))?;
    }
    for b in &fresh {
        index.manifests.push(b.descriptor.clone());
        layout
            .artifact(b)
            .map_err(|e| format!("{}: {e}", work.display()))?;
    }
    let bytes = index.to_bytes();
    layout
        .blob(&bytes)
        .and_then(|_| layout.tag(&tag, &Descriptor::of(IMAGE_INDEX, &bytes)))
        .map_err(|e| format!("{}: {e}", work.display()))?;
    cmds.run(&access.copy_argv(
        subject.fallback_reference(),
        format!("oci:{}:{tag}", work.display()),
        false,
    ))?;
    Ok(out)
}

/// Pushes each of `fresh` to `subject`'s repository by its digest, untagged: what a registry
/// with the referrers API needs (it indexes a manifest by its `subject` as it stores it).
/// skopeo 1.9.3 pushes to a digest reference (measured against docker-registry 2.8.2).
fn push_by_digest(
    cmds: &mut dyn Commands,
    access: &Access,
    subject: &Subject,
    fresh: &[&Built],
    (layout, work): (&Layout, &Path),
) -> Result<(), String> {
    for (n, b) in fresh.iter().enumerate() {
        let name = format!("artifact-{n}");
        layout
            .artifact(b)
            .and_then(|()| layout.tag(&name, &Descriptor::of(IMAGE_MANIFEST, &b.manifest)))
            .map_err(|e| format!("{}: {e}", work.display()))?;
        cmds.run(&access.copy_argv(
            format!("{}@{}", subject.repository, b.descriptor.digest),
            format!("oci:{}:{name}", work.display()),
            false,
        ))?;
    }
    Ok(())
}

/// An OCI image layout directory being written.
struct Layout<'a> {
    dir: &'a Path,
}

impl<'a> Layout<'a> {
    /// Writes an artifact's manifest and its blobs (config, layer).
    fn artifact(&self, b: &Built) -> std::io::Result<()> {
        self.blob(&b.manifest)?;
        b.blobs
            .iter()
            .try_for_each(|(_, bytes)| self.blob(bytes).map(|_| ()))
    }

    fn create(dir: &'a Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Self { dir })
    }

    fn blob(&self, bytes: &[u8]) -> std::io::Result<String> {
        let digest = digest_of(bytes);
        let path = self
            .dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]);
        std::fs::write(path, bytes)?;
        Ok(digest)
    }

    /// Points `index.json`'s `tag` at `target`, keeping its other entries.
    fn tag(&self, tag: &str, target: &Descriptor) -> std::io::Result<()> {
        let path = self.dir.join("index.json");
        let mut top = match std::fs::read(&path) {
            Ok(raw) => Index::parse(&raw).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::empty(),
            Err(e) => return Err(e),
        };
        const REF_NAME: &str = "org.opencontainers.image.ref.name";
        top.manifests
            .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
        let mut entry = target.clone();
        entry.annotations.insert(REF_NAME.into(), tag.into());
        top.manifests.push(entry);
        std::fs::write(
            path,
            serde_json::to_vec(&top).map_err(std::io::Error::other)?,
        )
    }
}

/// [`Commands`] as plain child processes (for `mab verify` and tests; a run uses its
/// supervised runner). A reference the registry lacks is `Ok(None)`.
pub struct Processes;

impl Commands for Processes {
    fn read(&mut self, command: &Command) -> Result<Option<Vec<u8>>, String> {
        let argv = command.argv();
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .map_err(|e| format!("{}: {e}", argv[0]))?;
        if out.status.success() {
            return Ok(Some(out.stdout));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("manifest unknown") || err.contains("not found") {
            return Ok(None);
        }
        Err(format!("{}: {}", argv.join(" "), err.trim()))
    }

    fn run(&mut self, command: &Command) -> Result<(), String> {
        self.read(command)?
            .map(|_| ())
            .ok_or_else(|| format!("{}: not found", command.argv().join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject::of(
            "127.0.0.1:5000/app".parse().unwrap(),
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#,
        )
    }

    fn sbom() -> Artifact {
        Artifact {
            artifact_type: "application/vnd.cyclonedx+json".into(),
            bytes: br#"{"bomFormat":"CycloneDX"}"#.to_vec(),
            annotations: BTreeMap::from([(GENERATOR.into(), "builtin".into())]),
        }
    }

    #[test]
    fn the_manifest_names_its_subject_and_is_deterministic() {
        let s = subject();
        let a = manifest(&s, &sbom());
        assert_eq!(a, manifest(&s, &sbom()));
        let v: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(v["artifactType"], "application/vnd.cyclonedx+json");
        assert_eq!(v["subject"]["digest"], s.digest());
        assert_eq!(v["config"]["mediaType"], EMPTY);
        assert_eq!(v["config"]["digest"], digest_of(b"{}"));
        assert_eq!(v["layers"][0]["digest"], digest_of(&sbom().bytes));
        assert_eq!(v["layers"][0]["annotations"][TITLE], "cyclonedx.json");
        assert_eq!(a.descriptor.digest, digest_of(&a.manifest));
        assert_eq!(
            a.descriptor.annotations[ARTIFACT_TYPE],
            "application/vnd.cyclonedx+json"
        );
    }

    #[test]
    fn the_index_has_no_artifact_type_and_sorted_annotations() {
        let mut i = Index::empty();
        let mut d = manifest(&subject(), &sbom()).descriptor;
        d.artifact_type = Some("x".into());
        i.manifests.push(d);
        let text = String::from_utf8(i.to_bytes()).unwrap();
        assert!(!text.contains("artifactType"), "{text}");
        assert!(text.starts_with(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType""#
        ));
        let a = text.find(ARTIFACT_TYPE).unwrap();
        let g = text.find(GENERATOR).unwrap();
        assert!(a < g, "keys sorted as Go sorts a map's: {text}");
    }

    #[test]
    fn fallback_tag_replaces_the_colon() {
        assert_eq!(fallback_tag("sha256:abc"), "sha256-abc");
        assert!(
            subject()
                .fallback_reference()
                .starts_with("127.0.0.1:5000/app:sha256-")
        );
    }
}
