//! `mab verify`: what the registry holds for every reference of a plan, checked against the
//! plan and the public key: each tag's index and its platforms, the signature of the index and
//! of every platform's image. For CI gates and for consumers; reads only.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;

use p256::ecdsa::VerifyingKey;

use crate::plan::{Manifest, Plan, inspect_command};
use crate::platform::Platform;
use crate::reference::{ImageRef, Repository};

use super::SignStep;
use super::ensure::{Registry, existing};
use super::layout::Scratch;
use super::manifest::digest_of;

/// One thing checked of one reference.
#[derive(Debug, Clone)]
pub struct Finding {
    pub what: String,
    /// `Err`: the miss, in words.
    pub result: Result<String, String>,
}

/// What was found for one reference of the plan.
pub struct Verdict {
    pub reference: String,
    pub findings: Vec<Finding>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.result.is_ok())
    }
}

/// The platforms an index lists, each with its image's digest.
fn entries(raw: &[u8]) -> Result<Vec<(Platform, String)>, String> {
    let index = oci_spec::image::ImageIndex::from_reader(raw)
        .map_err(|e| format!("it holds no image index: {e}"))?;
    index
        .manifests()
        .iter()
        .map(|m| {
            let p = m
                .platform()
                .as_ref()
                .ok_or_else(|| format!("the index lists {} without a platform", m.digest()))?;
            let written = match p.variant().as_deref() {
                Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os(), p.architecture()),
                _ => format!("{}/{}", p.os(), p.architecture()),
            };
            let platform = written
                .parse()
                .map_err(|e| format!("the index lists platform `{written}`: {e}"))?;
            Ok((platform, m.digest().to_string()))
        })
        .collect()
}

struct Checker<'a> {
    registry: &'a dyn Registry,
    key: &'a VerifyingKey,
    registries_conf: Option<&'a OsStr>,
    /// The config's registry limits, which mab's own requests (the referrers API's) keep.
    limits: crate::supervise::Limits,
    /// The artifact types each platform image must have attached (`[sbom]`, `[provenance]`).
    attachments: Vec<String>,
    /// The attachments' findings by (repository, image digest): tags of one image share them.
    attached: RefCell<HashMap<(String, String), Vec<Finding>>>,
}

impl Checker<'_> {
    /// The signature of `digest` in `repository`, checked with the key.
    fn signature(
        &self,
        repository: &Repository,
        (platform, digest): (Option<&Platform>, &str),
        insecure: bool,
    ) -> Finding {
        let what = match platform {
            None => format!("signature of the index {digest}"),
            Some(p) => format!("signature of its {p} image {digest}"),
        };
        let step = SignStep::new(
            repository,
            (platform, Some(digest)),
            insecure,
            self.registries_conf,
        );
        self.signature_at(&step, what, digest)
    }

    /// The attachments of `platform`'s image `digest` (in the list's own repository, where a
    /// run attaches them), and the signature of each.
    fn attachments(
        &self,
        m: &Manifest,
        repository: &Repository,
        (platform, digest): (&Platform, &str),
    ) -> Vec<Finding> {
        let built = !m.external.iter().any(|e| &e.platform == platform);
        if self.attachments.is_empty() || *repository != m.repository || !built {
            return Vec::new();
        }
        let key = (repository.to_string(), digest.to_string());
        if let Some(known) = self.attached.borrow().get(&key) {
            return known.clone();
        }
        let insecure = m.reach().insecure(repository);
        let image = super::attached::Image {
            repository,
            platform,
            digest,
            access: crate::attach::Access {
                insecure,
                registries_conf: self.registries_conf.map(OsStr::to_os_string),
                limits: self.limits,
            },
        };
        let (mut findings, found) =
            super::attached::check(self.registry, &image, &self.attachments);
        for r in found {
            let step = SignStep::attachment(
                repository,
                platform,
                &r.artifact_type,
                insecure,
                self.registries_conf,
            );
            let what = format!("signature of {} {}", step.what(), r.digest);
            findings.push(self.signature_at(&step, what, &r.digest));
        }
        self.attached.borrow_mut().insert(key, findings.clone());
        findings
    }

    /// The signature `step` makes of `digest`, checked with the key.
    fn signature_at(&self, step: &SignStep, what: String, digest: &str) -> Finding {
        let repository = &step.repository;
        let result = Scratch::new()
            .map_err(|e| format!("cannot make a scratch directory: {e}"))
            .and_then(|scratch| existing(self.registry, step, digest, &scratch))
            .and_then(|layers| {
                if layers.is_empty() {
                    return Err(format!("{} does not exist", step.reference(digest)));
                }
                let repo = repository.to_string();
                let mut why = Vec::new();
                for layer in &layers {
                    match super::check(layer, self.key, &repo, digest) {
                        Ok(()) => return Ok(step.reference(digest)),
                        Err(e) => why.push(e),
                    }
                }
                Err(format!(
                    "no signature of the key at {}: {}",
                    step.reference(digest),
                    why.join("; ")
                ))
            });
        Finding { what, result }
    }

    /// A tag that is to hold list `m`'s index.
    fn index_tag(&self, m: &Manifest, tag: &ImageRef) -> Verdict {
        let insecure = m.reach().insecure(&tag.repository);
        let mut findings = Vec::new();
        let argv = inspect_command(tag.to_string(), insecure, self.registries_conf);
        let raw = match self.registry.read(&argv) {
            Ok(Some(raw)) => Ok(raw),
            Ok(None) => Err("it does not exist".to_string()),
            Err(e) => Err(format!("reading it failed: {e}")),
        };
        let raw = match raw {
            Ok(raw) => raw,
            Err(miss) => {
                findings.push(Finding {
                    what: "the index".into(),
                    result: Err(miss),
                });
                return Verdict {
                    reference: tag.to_string(),
                    findings,
                };
            }
        };
        let digest = digest_of(&raw);
        let listed = match entries(&raw) {
            Ok(listed) => listed,
            Err(e) => {
                findings.push(Finding {
                    what: format!("the index {digest}"),
                    result: Err(e),
                });
                return Verdict {
                    reference: tag.to_string(),
                    findings,
                };
            }
        };
        let mut have: Vec<&Platform> = listed.iter().map(|(p, _)| p).collect();
        let mut want: Vec<&Platform> = m.platforms.iter().collect();
        have.sort();
        want.sort();
        findings.push(Finding {
            what: format!("the index {digest}"),
            result: if have == want {
                Ok(format!("lists {}", crate::error::join(&have)))
            } else {
                Err(format!(
                    "lists [{}], the plan has [{}]",
                    crate::error::join(&have),
                    crate::error::join(&want)
                ))
            },
        });
        findings.push(self.signature(&tag.repository, (None, &digest), insecure));
        for (p, d) in &listed {
            findings.push(self.signature(&tag.repository, (Some(p), d), insecure));
        }
        for (p, d) in &listed {
            findings.extend(self.attachments(m, &tag.repository, (p, d)));
        }
        Verdict {
            reference: tag.to_string(),
            findings,
        }
    }

    /// A tag that is to hold one platform's image of list `m`.
    fn platform_tag(&self, m: &Manifest, tag: &ImageRef, platform: &Platform) -> Verdict {
        let insecure = m.reach().insecure(&tag.repository);
        let argv = inspect_command(tag.to_string(), insecure, self.registries_conf);
        let findings = match self.registry.read(&argv) {
            Ok(Some(raw)) => {
                let digest = digest_of(&raw);
                let mut findings =
                    vec![self.signature(&tag.repository, (Some(platform), &digest), insecure)];
                findings.extend(self.attachments(m, &tag.repository, (platform, &digest)));
                findings
            }
            Ok(None) => vec![Finding {
                what: format!("its {platform} image"),
                result: Err("it does not exist".into()),
            }],
            Err(e) => vec![Finding {
                what: format!("its {platform} image"),
                result: Err(format!("reading it failed: {e}")),
            }],
        };
        Verdict {
            reference: tag.to_string(),
            findings,
        }
    }
}

/// Checks every reference of every pushed list of `plan`.
/// `limits` bound mab's own registry requests as a run's are bound.
pub fn verify(
    plan: &Plan,
    key: &VerifyingKey,
    registry: &dyn Registry,
    limits: crate::supervise::Limits,
) -> Vec<Verdict> {
    let checker = Checker {
        registry,
        key,
        registries_conf: plan.registries_conf.as_deref(),
        limits,
        attachments: super::steps::attachments(&plan.content.settings),
        attached: RefCell::default(),
    };
    plan.manifests
        .iter()
        .filter(|m| m.push)
        .flat_map(|m| {
            m.references().map(|(tag, platform)| match platform {
                None => checker.index_tag(m, tag),
                Some(p) => checker.platform_tag(m, tag, p),
            })
        })
        .collect()
}

/// The verdicts for people: one line per reference, one per finding.
pub fn render(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let word = if v.ok() { "ok" } else { "FAILED" };
        let _ = writeln!(out, "{} {word}", v.reference);
        for f in &v.findings {
            let _ = match &f.result {
                Ok(detail) => writeln!(out, "  ok    {}: {detail}", f.what),
                Err(miss) => writeln!(out, "  MISS  {}: {miss}", f.what),
            };
        }
    }
    out
}

/// The public key `mab verify` checks with: `--key`, else the `.pub` beside a `[signing]` key
/// file (as `mab keygen` and `cosign generate-key-pair` write them).
pub fn public_key(
    plan: &Plan,
    given: Option<&std::path::Path>,
) -> Result<VerifyingKey, crate::error::Error> {
    use crate::error::{ConfigError, ErrorKind};
    let path = match (given, plan.signing.as_ref().map(|s| &s.key)) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(super::KeySource::File(k))) => k.with_extension("pub"),
        (None, _) => {
            return Err(ConfigError::new(
                ErrorKind::Selection,
                "mab verify needs the public key to check signatures with",
            )
            .with_help("pass --key cosign.pub")
            .into());
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        ConfigError::new(
            ErrorKind::Io,
            format!("cannot read the public key {}: {e}", path.display()),
        )
    })?;
    super::key::parse_public(&text).map_err(|e| {
        ConfigError::new(
            ErrorKind::Type,
            format!(
                "{} is no public key mab can check with: {e}",
                path.display()
            ),
        )
        .into()
    })
}
