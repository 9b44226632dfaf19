//! The plan's signing steps: for each image a list publishes (its index, each platform's
//! image), a signature in the list's repository, made after the index is pushed (to its
//! marker, or by digest) and before any release tag moves.

use std::ffi::OsStr;

use serde::Serialize;

use crate::plan::{Arg, Command, CommandKind, Hole};
use crate::platform::Platform;
use crate::reference::Repository;

use super::manifest::signature_tag;

/// Signs one image of a list: the index (`platform` none) or one platform's image.
#[derive(Debug, Clone, Serialize)]
pub struct SignStep {
    /// Where the signature goes, and the identity it names.
    pub repository: Repository,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The image's digest, when the registry held it before the run (an unchanged list's):
    /// else the one pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Reads the signature tag: a signature of the run's key there already is kept. Its
    /// commands have holes ([`Hole::SignatureTag`], [`Hole::SignatureLayout`]) until
    /// [`SignStep::filled`].
    pub read: Command,
    /// Copies the signature tag's manifest and payloads into a layout, when it holds
    /// signatures (another key's are kept: a new one is added beside them).
    pub fetch: Command,
    /// Pushes the signature manifest from the layout to the signature tag, digests kept.
    pub push: Command,
}

/// `skopeo` with its global options, then `args`.
fn skopeo(kind: CommandKind, registries_conf: Option<&OsStr>, args: &[&str]) -> Command {
    let mut prefix: Vec<String> = vec!["skopeo".into()];
    if let Some(conf) = registries_conf {
        prefix.extend([
            "--registries-conf".into(),
            conf.to_string_lossy().into_owned(),
        ]);
    }
    Command::new(kind, prefix, args.iter().copied())
}

impl SignStep {
    /// The step that signs `platform`'s image (none: the index) of a list in `repository`,
    /// `digest` when known (else the run fills it in).
    pub fn new(
        repository: &Repository,
        (platform, digest): (Option<&Platform>, Option<&str>),
        insecure: bool,
        registries_conf: Option<&OsStr>,
    ) -> Self {
        let remote = match digest {
            Some(d) => Arg::Lit(format!("{repository}:{}", signature_tag(d))),
            None => Arg::holed(
                format!("{repository}:"),
                Hole::SignatureTag(platform.cloned()),
                "",
            ),
        };
        let local = Arg::holed(
            "oci:",
            Hole::SignatureLayout,
            format!(":{}", super::layout::NAME),
        );
        let tls = |flag: &str| insecure.then(|| format!("--{flag}=false"));
        let mut read = skopeo(CommandKind::Inspect, registries_conf, &["inspect", "--raw"]);
        read.args(tls("tls-verify")).registry(remote.clone());
        let copy = &["copy", "--preserve-digests"];
        let mut fetch = skopeo(CommandKind::Copy, registries_conf, copy);
        fetch
            .args(tls("src-tls-verify"))
            .registry(remote.clone())
            .arg(local.clone());
        let mut push = skopeo(CommandKind::Copy, registries_conf, copy);
        push.args(tls("dest-tls-verify"))
            .arg(local)
            .registry(remote);
        Self {
            repository: repository.clone(),
            platform: platform.cloned(),
            digest: digest.map(String::from),
            read,
            fetch,
            push,
        }
    }

    /// Its commands for image `digest`, the layout in `layout`: `[read, fetch, push]`.
    pub fn filled(&self, digest: &str, layout: &std::path::Path) -> [Command; 3] {
        let tag = signature_tag(digest);
        let layout = layout.to_string_lossy();
        let fill = |c: &Command| {
            c.fill(|h| match h {
                Hole::SignatureTag(p) if *p == self.platform => Some(tag.clone()),
                Hole::SignatureLayout => Some(layout.to_string()),
                _ => None,
            })
        };
        [fill(&self.read), fill(&self.fetch), fill(&self.push)]
    }

    /// The signature tag it writes, as the report shows it.
    pub fn reference(&self, digest: &str) -> String {
        format!("{}:{}", self.repository, signature_tag(digest))
    }
}

/// The signing steps of a list in `repository` published with `platforms`: the index first,
/// then each platform's image. `known`: the digests of an unchanged list (index, then each
/// platform's), which the registry check read.
pub fn for_list(
    repository: &Repository,
    platforms: &[Platform],
    known: Option<(&str, &[(Platform, String)])>,
    insecure: bool,
    registries_conf: Option<&OsStr>,
) -> Vec<SignStep> {
    let index = known.map(|(index, _)| index);
    let image = |p: &Platform| {
        known.and_then(|(_, images)| images.iter().find(|(q, _)| q == p).map(|(_, d)| d.as_str()))
    };
    std::iter::once(SignStep::new(
        repository,
        (None, index),
        insecure,
        registries_conf,
    ))
    .chain(
        platforms
            .iter()
            .map(|p| SignStep::new(repository, (Some(p), image(p)), insecure, registries_conf)),
    )
    .collect()
}

/// Adds the signing steps to list `man`'s publication: for every repository it is published
/// to (its own first), the index and each platform's image, signed after the push and before
/// the first copy (an unchanged list, which has no push: before its copies). `known`: an
/// unchanged list's digests (index, then each platform's), read by the registry check.
pub fn add(
    man: &mut crate::plan::Manifest,
    known: Option<(&str, &[(Platform, String)])>,
    registries_conf: Option<&OsStr>,
) {
    use crate::plan::Step;
    let mut repositories: Vec<&Repository> = vec![&man.repository];
    for (tag, _) in man.references() {
        if !repositories.contains(&&tag.repository) {
            repositories.push(&tag.repository);
        }
    }
    let reach = man.reach();
    let steps: Vec<Step> = repositories
        .iter()
        .flat_map(|r| for_list(r, &man.platforms, known, reach.insecure(r), registries_conf))
        .map(Step::Sign)
        .collect();
    let at = match man
        .publish
        .iter()
        .position(|s| matches!(s, Step::Push { .. }))
    {
        Some(push) => push + 1,
        None => man
            .publish
            .iter()
            .position(|s| matches!(s, Step::Copy { .. }))
            .unwrap_or(man.publish.len()),
    };
    man.publish.splice(at..at, steps);
}

/// Where a signed list's index is pushed when the run has no marker for it (`--rebuild`, or
/// inputs the registry could not tell): a tag of mab's own, never a release tag, so that no
/// release tag points at the index before it is signed. One per list (named by a hash of the
/// instance name, which the tag grammar may not allow as is).
pub fn staging_tag(repository: &Repository, instance: &str) -> crate::reference::ImageRef {
    use sha2::{Digest, Sha256};
    let hash = format!("{:x}", Sha256::digest(instance.as_bytes()));
    crate::reference::ImageRef {
        repository: repository.clone(),
        tag: format!("mab-signing-{}", &hash[..16])
            .parse()
            .expect("a valid tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_filled_with_the_signature_tag_and_layout() {
        let repo: Repository = "127.0.0.1:5000/app".parse().unwrap();
        let p: Platform = "linux/arm64".parse().unwrap();
        let step = SignStep::new(&repo, (Some(&p), None), true, None);
        assert_eq!(
            step.push.argv().last().unwrap(),
            "docker://127.0.0.1:5000/app:<signature tag of its linux/arm64 image>"
        );
        assert_eq!(
            step.fetch.argv()[4..],
            [
                "docker://127.0.0.1:5000/app:<signature tag of its linux/arm64 image>",
                "oci:<signature layout>:sig"
            ]
        );
        let [read, fetch, push] = step.filled("sha256:ab", std::path::Path::new("/t/l"));
        assert_eq!(read.holes().count() + fetch.holes().count(), 0);
        assert_eq!(
            fetch.registry_reference().as_deref(),
            Some("127.0.0.1:5000/app:sha256-ab.sig")
        );
        let (fetch, push) = (fetch.argv(), push.argv());
        assert_eq!(
            read.argv(),
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                "docker://127.0.0.1:5000/app:sha256-ab.sig"
            ]
        );
        assert!(fetch.contains(&"oci:/t/l:sig".to_string()), "{fetch:?}");
        assert!(push.contains(&"--dest-tls-verify=false".to_string()));
        assert_eq!(push[push.len() - 2], "oci:/t/l:sig");
    }
}
