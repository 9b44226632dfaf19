//! External platforms at run time: each `from` is read from its registry once per run, a tag
//! resolved to the digest of the image for its platform, and that image's config must say the
//! platform its override's key names. The list then adds the image by that digest, and the
//! digest is an input of the list (a moved tag makes a new list).

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{ConfigError, ErrorKind};
use crate::external::{config_platform, platform_matches};
use crate::inputs;
use crate::plan::{Command, ExternalEntry, Plan, inspect_command, inspect_config_command};
use crate::state::Refused;

use super::runner::{Runner, error_line};
use super::verify::entries;

/// `plan` with every external platform's digest known and its `manifest add` naming it. A
/// `from` that names no image, or an image of another platform, is the config's fault (exit 2);
/// a registry that cannot be read fails the run before anything is built.
pub(super) fn resolve(plan: &Plan, runner: &Runner, logs: &Path) -> std::io::Result<Plan> {
    let mut wanted: Vec<&ExternalEntry> = plan.manifests.iter().flat_map(|m| &m.external).collect();
    if wanted.is_empty() {
        return Ok(plan.clone());
    }
    wanted.sort_by(|a, b| (&a.from, &a.platform).cmp(&(&b.from, &b.platform)));
    wanted.dedup_by(|a, b| a.from == b.from && a.platform == b.platform);
    let resolved: Vec<std::io::Result<String>> = wanted
        .par_iter()
        .enumerate()
        .map(|(n, e)| resolve_one(plan, runner, e, &logs.join(format!("external-{n}.log"))))
        .collect();
    let mut digests = HashMap::new();
    for (e, r) in wanted.iter().zip(resolved) {
        digests.insert((e.from.clone(), e.platform.clone()), r?);
    }
    let mut plan = plan.clone();
    for e in plan.manifests.iter_mut().flat_map(|m| &mut m.external) {
        let digest = &digests[&(e.from.clone(), e.platform.clone())];
        // The entry is the add's last argument.
        e.add
            .set_last_registry(e.from.at_digest(digest).to_string());
        e.digest = Some(digest.clone());
    }
    Ok(plan)
}

/// The digest of `e`'s image for its platform: the written or tagged manifest's own, or its
/// platform's entry when it is an index; then its config is read and compared with the key.
fn resolve_one(
    plan: &Plan,
    runner: &Runner,
    e: &ExternalEntry,
    log: &Path,
) -> std::io::Result<String> {
    let conf = plan.registries_conf.as_deref();
    let read = |argv: Command| -> std::io::Result<Vec<u8>> {
        match runner.read(&argv, log) {
            Ok(Some(raw)) => Ok(raw),
            Ok(None) => Err(refused(
                e,
                ErrorKind::Reference,
                format!("`{}` is not in its registry", e.from),
            )),
            Err(f) => Err(std::io::Error::other(format!(
                "cannot read {} for {}: {}",
                e.from,
                e.platform,
                f.attempt.as_deref().map(error_line).unwrap_or(&f.reason)
            ))),
        }
    };
    let raw = read(inspect_command(e.from.to_string(), e.insecure, conf))?;
    let mut digest = e
        .from
        .digest()
        .map_or_else(|| inputs::digest_of(&raw), String::from);
    // An index (the image is multi-arch): the entry of this platform.
    if let Ok(listed) = entries(&raw) {
        let Some((_, d)) = listed.iter().find(|(p, _)| *p == e.platform) else {
            let has: Vec<String> = listed.iter().map(|(p, _)| p.to_string()).collect();
            return Err(refused(
                e,
                ErrorKind::PlatformMismatch,
                format!(
                    "`{}` is a list of [{}], with no {} image",
                    e.from,
                    has.join(", "),
                    e.platform
                ),
            ));
        };
        digest = d.digest().to_string();
    }
    let config = inspect_config_command(e.from.at_digest(&digest).to_string(), e.insecure, conf);
    let config = read(config)?;
    let found = serde_json::from_slice(&config)
        .ok()
        .and_then(|c| config_platform(&c));
    match found {
        Some((p, _)) if platform_matches(&e.platform, &p) => Ok(digest),
        Some((p, version)) => {
            let version = version.map_or(String::new(), |v| format!(" (os.version {v})"));
            Err(refused(
                e,
                ErrorKind::PlatformMismatch,
                format!(
                    "`{}` is a {p}{version} image, but it is taken for {}",
                    e.from, e.platform
                ),
            ))
        }
        None => Err(std::io::Error::other(format!(
            "the config of {} names no platform",
            e.from
        ))),
    }
}

/// An error of the config, pointed at the `from` that caused it.
fn refused(e: &ExternalEntry, kind: ErrorKind, what: String) -> std::io::Error {
    Refused(
        ConfigError::new(kind, format!("{}: `from` of {}: {what}", e.at, e.platform))
            .with_help("`from` must name an image of the platform of its `[images.NAME.platform.\"os/arch\"]` key"),
    )
    .into()
}
