//! Which build node runs each build: one that builds its platform natively, else one that
//! emulates it; among several, the one with the fewest builds per slot so far. A build's build
//! platform (`--platform=$BUILDPLATFORM`) is its node's own.

use std::collections::HashMap;

use crate::config::{Address, Config, Node};
use crate::error::{ConfigError, ErrorKind, join};
use crate::matrix::Instance;
use crate::platform::Platform;

/// The nodes that may build `p`: natively if any does, else by emulation.
fn candidates<'a>(config: &'a Config, p: &Platform) -> Vec<(usize, &'a Node)> {
    let native: Vec<(usize, &Node)> = config
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.platforms.contains(p))
        .collect();
    if !native.is_empty() {
        return native;
    }
    // The first emulating node only: its own platform is the build platform, which must not
    // depend on how builds are spread.
    config
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.emulates.contains(p))
        .take(1)
        .collect()
}

/// The platform a build for `target` is built on: this machine's without nodes; `target`
/// itself on a node that builds it natively; else the emulating node's own.
pub(super) fn build_platform(config: &Config, target: &Platform) -> Platform {
    match candidates(config, target).first() {
        None => Platform::host(),
        Some((_, n)) if n.platforms.contains(target) => target.clone(),
        Some((_, n)) => n.native().clone(),
    }
}

/// Whether `node` is this machine.
pub(super) fn is_local(node: Option<&Node>) -> bool {
    node.is_none_or(|n| n.address == Address::Local)
}

/// Every platform the selected instances build has a node, and an image whose list is not
/// pushed builds on this machine only (its images could not reach the list otherwise).
pub(super) fn check(
    config: &Config,
    instances: &[Instance],
    selected: &[bool],
) -> Result<(), ConfigError> {
    if config.nodes.is_empty() {
        return Ok(());
    }
    let described = || {
        join(config.nodes.iter().map(|n| {
            let mut d = format!("{} ({}", n.name, join(&n.platforms));
            if !n.emulates.is_empty() {
                d.push_str(&format!("; emulates {}", join(&n.emulates)));
            }
            d + ")"
        }))
    };
    for (inst, _) in instances.iter().zip(selected).filter(|(_, s)| **s) {
        let def = &config.images[inst.image];
        for spec in &inst.builds {
            let found = candidates(config, &spec.platform);
            if found.is_empty() {
                return Err(def
                    .platforms_source
                    .error(
                        ErrorKind::Platform,
                        def.platforms_span.clone(),
                        format!(
                            "no build node builds {} for image `{}`: the nodes are {}",
                            spec.platform,
                            inst.name,
                            described()
                        ),
                    )
                    .with_help(format!(
                        "add \"{}\" to the `platforms` (or `emulates`) of a node",
                        spec.platform
                    )));
            }
            if !inst.push && found.iter().all(|(_, n)| !is_local(Some(n))) {
                return Err(def
                    .file
                    .source
                    .error(
                        ErrorKind::Type,
                        def.key_span.clone(),
                        format!(
                            "image `{}` is not pushed (push = false), but its {} build runs on node `{}`: its image would never reach this machine's list",
                            inst.name, spec.platform, found[0].1.name
                        ),
                    )
                    .with_help("push it, or give a node named `local` (this machine) that platform"));
            }
        }
    }
    Ok(())
}

/// Spreads builds, given in plan order with their platforms, over the nodes: by build id, the
/// index of its node in `config.nodes`.
pub(super) fn assign<'a>(
    config: &Config,
    builds: impl Iterator<Item = (String, &'a Platform)>,
) -> HashMap<String, usize> {
    let mut count = vec![0usize; config.nodes.len()];
    let mut out = HashMap::new();
    if config.nodes.is_empty() {
        return out;
    }
    for (id, p) in builds {
        let found = candidates(config, p);
        // The fewest builds per slot so far; the first node (by name) on a tie.
        let best = found
            .iter()
            .min_by(|(a, na), (b, nb)| {
                ((count[*a] + 1) * nb.jobs).cmp(&((count[*b] + 1) * na.jobs))
            })
            .map(|(n, _)| *n);
        if let Some(n) = best {
            count[n] += 1;
            out.insert(id, n);
        }
    }
    out
}
