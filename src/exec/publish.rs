//! Publishing a list: its [`Step`]s in order (what each tag holds is recorded, the index is
//! pushed once and read back, each tag is pointed at it by a copy in the registry and read
//! back), and what each tag held, got and ended as; `--atomic`'s restores after a failure.

use std::collections::HashMap;
use std::path::Path;

use crate::inputs::digest_of;
use crate::plan::{Command, Hole, Manifest, Plan, Step};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::supervise::When;

use crate::sign::ensure::SignatureReport;

use super::report::{Held, TagReport, TagStatus};
use super::runner::{Failure, Runner};
use super::verify::{entries, verify_entries, verify_index};

/// How a list's publication went: every tag's report (in the list's order), the marker's,
/// and the failure that stopped it, if one did.
pub(super) struct Publication {
    pub(super) tags: Vec<TagReport>,
    pub(super) marker: Option<TagReport>,
    /// Each platform's image in the index pushed (or held), as read back.
    pub(super) images: Vec<(Platform, String)>,
    pub(super) failure: Option<Failure>,
    /// The artifacts attached to its platform images.
    pub(super) attached: Vec<super::attachments::AttachedImage>,
    /// The signatures its signing steps made sure of.
    pub(super) signatures: Vec<SignatureReport>,
}

/// What a publication has learnt so far: what each tag held, and the index.
#[derive(Default)]
struct Seen<'a> {
    before: HashMap<&'a ImageRef, Held>,
    /// The index's digest, once pushed (or the registry's, for an unchanged list).
    index: Option<String>,
    /// The pushed index's image digest per platform, for the platforms' tags.
    images: Vec<(Platform, String)>,
    /// What each reference got (the index, or a platform's image).
    got: HashMap<&'a ImageRef, String>,
    signatures: Vec<SignatureReport>,
    /// The artifacts attached to its platform images.
    attached: Vec<super::attachments::AttachedImage>,
}

impl Runner<'_> {
    /// Runs the publication of list `m`, one step after another, until one fails. `expected`
    /// (`(platform, digest)`: images other nodes pushed) are checked in the index read back.
    /// One after another: docker-registry 2.8 fails pushes of the same new blobs side by side
    /// ("blob unknown to registry").
    pub(super) fn publish(
        &self,
        plan: &Plan,
        m: &Manifest,
        expected: &[(Platform, String)],
        sboms: &super::attachments::Sboms,
        log: &Path,
    ) -> Publication {
        let mut seen = Seen::default();
        let mut ended: HashMap<&ImageRef, TagStatus> = HashMap::new();
        let mut marker = None;
        let mut failure = None;
        for step in &m.publish {
            let mut result = self.step(plan, m, step, expected, &mut seen, log);
            // Right after the index is pushed (to the marker, or the first tag) and before
            // any other tag moves, its platform images get their artifacts.
            if let (Ok(Some(_)), Step::Push { .. }) = (&result, step) {
                match self.attach(plan, m, &seen.images, sboms, log) {
                    Ok(a) => seen.attached = a,
                    Err(f) => result = Err(f),
                }
            }
            match (result, step) {
                (Ok(None), _) => {}
                (
                    Ok(Some(digest)),
                    Step::Push {
                        to, marker: true, ..
                    },
                ) => {
                    marker = Some(TagReport {
                        reference: to.to_string(),
                        status: TagStatus::Moved,
                        digest: Some(digest),
                        before: None,
                    });
                }
                (Ok(Some(digest)), step) => {
                    let tag = step.tag().expect("a release tag's step");
                    seen.got.insert(tag, digest.clone());
                    let status = match seen.before.get(tag) {
                        Some(Held::Digest(d)) if *d == digest => TagStatus::Unchanged,
                        _ => TagStatus::Moved,
                    };
                    ended.insert(tag, status);
                }
                (Err(f), step) => {
                    if let Some(tag) = step.tag() {
                        let reason = f.reason.clone();
                        ended.insert(tag, TagStatus::Failed { reason });
                    }
                    failure = Some(f);
                    break;
                }
            }
        }
        // Every tag the publication was to move, in the list's order: those it did not reach
        // are not moved either.
        let stopped = || TagStatus::Failed {
            reason: format!(
                "not moved, as the list's publication stopped: {}",
                failure.as_ref().map_or("", |f| f.reason.as_str())
            ),
        };
        let tags = m
            .references()
            .filter(|(t, _)| m.publish.iter().any(|s| s.tag() == Some(*t)))
            .map(|(t, platform)| TagReport {
                reference: t.to_string(),
                status: ended.remove(t).unwrap_or_else(stopped),
                digest: match platform {
                    None => seen.index.clone(),
                    Some(_) => seen.got.get(t).cloned(),
                },
                before: seen.before.get(t).cloned(),
            })
            .collect();
        Publication {
            tags,
            marker,
            images: seen.images,
            failure,
            attached: seen.attached,
            signatures: seen.signatures,
        }
    }

    /// Runs one step of list `m`'s publication: the digest of the index the step's tag (or
    /// the marker) holds now, none for a step that only reads what a tag holds.
    fn step<'m>(
        &self,
        plan: &Plan,
        m: &'m Manifest,
        step: &'m Step,
        expected: &[(Platform, String)],
        seen: &mut Seen<'m>,
        log: &Path,
    ) -> Result<Option<String>, Failure> {
        match step {
            Step::Held { tag, digest } => {
                let held = digest.clone().map_or(Held::Nothing, Held::Digest);
                seen.before.insert(tag, held);
                Ok(None)
            }
            Step::Record { tag, argv } => {
                let raw = self.read(argv, log).map_err(|f| Failure {
                    reason: format!(
                        "reading what {tag} holds from registry {} failed: {}",
                        tag.repository.registry(),
                        f.reason
                    ),
                    ..f
                })?;
                let held = raw.map_or(Held::Nothing, |raw| Held::Digest(digest_of(&raw)));
                seen.before.insert(tag, held);
                Ok(None)
            }
            Step::Push {
                to,
                argv,
                digestfile,
                verify,
                ..
            } => {
                let (digest, images) =
                    self.push_index(m, to, argv, digestfile, verify, expected, log)?;
                seen.index = Some(digest.clone());
                seen.images = images;
                Ok(Some(digest))
            }
            Step::Copy {
                tag,
                platform: Some(platform),
                argv,
                index,
                verify,
                ..
            } => {
                let digest = index
                    .clone()
                    .or_else(|| {
                        let found = seen.images.iter().find(|(p, _)| p == platform);
                        found.map(|(_, d)| d.clone())
                    })
                    .expect("a plan copies to a platform's tags after its push");
                let argv =
                    argv.fill(|h| (*h == Hole::ImageOf(platform.clone())).then(|| digest.clone()));
                self.copy_image(tag, &argv, verify, &digest, log)?;
                Ok(Some(digest))
            }
            Step::Copy {
                tag,
                argv,
                index,
                verify,
                ..
            } => {
                let digest = index
                    .clone()
                    .or_else(|| seen.index.clone())
                    .expect("a plan copies to its tags after its push");
                seen.index = Some(digest.clone());
                let argv = argv.fill(|h| (*h == Hole::PushedIndex).then(|| digest.clone()));
                self.copy(m, tag, &argv, verify, &digest, log)?;
                Ok(Some(digest))
            }
            Step::Attach(a) => {
                let attached = self.attach_missing(plan, m, a, log)?;
                seen.attached.push(attached);
                Ok(None)
            }
            Step::Sign(s) if s.attachment.is_some() => {
                let Some(digest) =
                    self.attachment_digest(plan, m, s, (&seen.images, &seen.attached), log)?
                else {
                    return Ok(None);
                };
                let signed = self.sign(s, &digest, log)?;
                seen.signatures.push(signed);
                Ok(None)
            }
            Step::Sign(s) => {
                let digest = s
                    .digest
                    .clone()
                    .or_else(|| match &s.platform {
                        None => seen.index.clone(),
                        Some(p) => {
                            let found = seen.images.iter().find(|(q, _)| q == p);
                            found.map(|(_, d)| d.clone())
                        }
                    })
                    .expect("a plan signs after its push");
                let signed = self.sign(s, &digest, log)?;
                seen.signatures.push(signed);
                Ok(None)
            }
        }
    }

    /// Pushes list `m` to `to` and reads it back: the digest of the index pushed, and of
    /// each platform's image in it.
    #[allow(clippy::too_many_arguments)]
    fn push_index(
        &self,
        m: &Manifest,
        to: &ImageRef,
        argv: &Command,
        digestfile: &str,
        verify: &Command,
        expected: &[(Platform, String)],
        log: &Path,
    ) -> Result<(String, Vec<(Platform, String)>), Failure> {
        let registry = to.repository.registry();
        // A remote podman writes no digest file: the run removed the one an earlier run left
        // before it started (`prepare::clear_outputs`), so none passes for this push's.
        let file = self.workdir.join(digestfile);
        self.retrying(log, || self.logged(argv, log))
            .map_err(|f| Failure {
                reason: format!("pushing {to} to registry {registry} failed: {}", f.reason),
                ..f
            })?;
        let raw = self.read_back(to, verify, log)?;
        let digest = match std::fs::read_to_string(&file) {
            Ok(pushed) => pushed.trim().to_string(),
            Err(_) => digest_of(&raw),
        };
        let images = verify_index(&raw, &digest, &m.platforms)
            .and_then(|()| verify_entries(&raw, expected))
            .and_then(|()| entries(&raw))
            .map_err(|e| Failure::new(format!("{to} does not match the plan: {e}")))?;
        let images = images
            .into_iter()
            .map(|(p, d)| (p, d.digest().to_string()))
            .collect();
        Ok((digest, images))
    }

    /// Points `tag` at one platform's image `digest` with `argv` (a copy in the registry),
    /// and reads it back: it must serve that very image manifest, not a list.
    fn copy_image(
        &self,
        tag: &ImageRef,
        argv: &Command,
        verify: &Command,
        digest: &str,
        log: &Path,
    ) -> Result<(), Failure> {
        self.point(tag, &format!("image {digest}"), argv, log)?;
        let served = digest_of(&self.read_back(tag, verify, log)?);
        if served != digest {
            return Err(Failure::new(format!(
                "{tag} does not match the plan: the registry serves {served}, the list's image is {digest}"
            )));
        }
        Ok(())
    }

    /// Points `tag` at index `digest` with `argv` (a copy in the registry), and reads it back:
    /// it must hold those very bytes.
    fn copy(
        &self,
        m: &Manifest,
        tag: &ImageRef,
        argv: &Command,
        verify: &Command,
        digest: &str,
        log: &Path,
    ) -> Result<(), Failure> {
        self.point(tag, &format!("{}@{digest}", tag.repository), argv, log)?;
        let raw = self.read_back(tag, verify, log)?;
        verify_index(&raw, digest, &m.platforms)
            .map_err(|e| Failure::new(format!("{tag} does not match the plan: {e}")))
    }

    /// Runs `argv`, the copy in the registry that points `tag` at `what`, with retries.
    fn point(&self, tag: &ImageRef, what: &str, argv: &Command, log: &Path) -> Result<(), Failure> {
        let registry = tag.repository.registry();
        self.retrying(log, || self.logged(argv, log))
            .map_err(|f| Failure {
                reason: format!(
                    "pointing {tag} at {what} in registry {registry} failed: {}",
                    f.reason
                ),
                ..f
            })
    }

    fn read_back(&self, what: &ImageRef, verify: &Command, log: &Path) -> Result<Vec<u8>, Failure> {
        self.retrying(log, || self.command(verify, log, true, None, When::Normal))
            .map_err(|f| Failure {
                reason: format!(
                    "reading {what} back from registry {} failed: {}",
                    what.repository.registry(),
                    f.reason
                ),
                ..f
            })
    }

    /// `--atomic`, after a failure of the run: puts each tag of list `m` that moved back to
    /// what it held, by a copy in the registry. A tag that did not exist before stays: a
    /// registry cannot drop only a tag (deleting the manifest would drop every tag of it).
    /// Runs even when the run is stopping: it is what an interrupted atomic run owes.
    pub(super) fn restore(&self, m: &Manifest, tags: &mut [TagReport], log: &Path) {
        for report in tags.iter_mut().filter(|t| t.status == TagStatus::Moved) {
            let Some(restore) = m
                .publish
                .iter()
                .filter(|s| s.tag().is_some_and(|t| t.to_string() == report.reference))
                .find_map(Step::restore)
            else {
                continue;
            };
            report.status = match &report.before {
                Some(Held::Digest(old)) => {
                    let argv = restore.fill(|h| (*h == Hole::Held).then(|| old.clone()));
                    match self.retrying(log, || self.command(&argv, log, false, None, When::Cleanup))
                    {
                        Ok(_) => TagStatus::Restored,
                        Err(f) => TagStatus::NotRestored {
                            reason: format!("putting back {old} failed: {}", f.reason),
                        },
                    }
                }
                Some(Held::Nothing) => TagStatus::NotRestored {
                    reason: "it did not exist before the run, and a registry cannot drop only a tag: it is left pointing at the new index".into(),
                },
                None => TagStatus::NotRestored {
                    reason: "what it held before the run is not known".into(),
                },
            };
        }
    }
}
