//! `[nodes.NAME]`: the machines builds run on, each reached through podman's remote API, and
//! the platforms each builds natively or by emulation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::Spanned;

use super::raw::RawNode;
use crate::error::{ConfigError, ErrorKind, Source};
use crate::platform::Platform;

/// How podman reaches a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// This machine's podman, as for a config without nodes.
    Local,
    /// `podman --url URL`: `ssh://user@host[:port]/run/podman/podman.sock` or `unix:///path`.
    Url(String),
    /// `podman --connection NAME`, a `podman system connection`.
    Connection(String),
}

/// A node, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub address: Address,
    /// Built natively; the first is the node's own platform, its builds' build platform.
    pub platforms: Vec<Platform>,
    /// Built through an emulator (slower).
    pub emulates: Vec<Platform>,
    /// Builds at once.
    pub jobs: usize,
    /// The ssh key for an `ssh://` url (`--identity`).
    pub identity: Option<PathBuf>,
}

impl Node {
    /// The global options that send a podman command to this node.
    pub fn podman_args(&self) -> Vec<String> {
        let mut args = match &self.address {
            Address::Local => Vec::new(),
            Address::Url(url) => vec!["--url".to_string(), url.clone()],
            Address::Connection(c) => vec!["--connection".to_string(), c.clone()],
        };
        if let Some(key) = &self.identity {
            args.extend(["--identity".to_string(), key.display().to_string()]);
        }
        args
    }

    /// The platform this node builds on: its own.
    pub fn native(&self) -> &Platform {
        &self.platforms[0]
    }
}

fn platforms(
    source: &Source,
    name: &str,
    key: &str,
    list: &[Spanned<String>],
) -> Result<Vec<Platform>, ConfigError> {
    list.iter()
        .map(|p| {
            p.get_ref().parse::<Platform>().map_err(|e| {
                source.error(
                    ErrorKind::Platform,
                    p.span(),
                    format!(
                        "`{}` in `{key}` of node `{name}` is not a platform: {e}",
                        p.get_ref()
                    ),
                )
            })
        })
        .collect()
}

/// The nodes of one file, checked.
pub(super) fn parse(
    source: &Source,
    dir: &std::path::Path,
    raw: &BTreeMap<Spanned<String>, Spanned<RawNode>>,
    confine: &crate::confine::Confinement,
) -> Result<Vec<Node>, ConfigError> {
    let mut nodes = Vec::with_capacity(raw.len());
    for (name, node) in raw {
        let (span, name, n) = (node.span(), name.get_ref().clone(), node.get_ref());
        let err = |message: String, help: &str| {
            source
                .error(ErrorKind::Type, span.clone(), message)
                .with_help(help.to_string())
        };
        let address = match (&n.url, &n.connection) {
            (Some(_), Some(_)) => {
                return Err(err(
                    format!("node `{name}` has both `url` and `connection`"),
                    "keep one: a url, or the name of a `podman system connection`",
                ));
            }
            (Some(url), None) => {
                if !["ssh://", "unix://", "tcp://"]
                    .iter()
                    .any(|s| url.starts_with(s))
                {
                    return Err(err(
                        format!(
                            "`url` of node `{name}` is `{url}`, not an ssh://, unix:// or tcp:// address"
                        ),
                        "write url = \"ssh://user@host/run/podman/podman.sock\" or \"unix:///run/podman/podman.sock\"",
                    ));
                }
                Address::Url(url.clone())
            }
            (None, Some(c)) => Address::Connection(c.clone()),
            (None, None) if name == "local" => Address::Local,
            (None, None) => {
                return Err(err(
                    format!("node `{name}` has no `url` or `connection`"),
                    "give it url = \"ssh://...\" or connection = \"NAME\"; only a node named `local` is this machine",
                ));
            }
        };
        let native = platforms(source, &name, "platforms", &n.platforms)?;
        if native.is_empty() {
            return Err(err(
                format!("node `{name}` builds no platform"),
                "list the platforms it builds natively: platforms = [\"linux/arm64\"]",
            ));
        }
        let emulates = platforms(source, &name, "emulates", &n.emulates)?;
        if n.jobs == Some(0) {
            return Err(err(
                format!("node `{name}` has `jobs = 0`"),
                "a node runs at least one build at once",
            ));
        }
        let identity = match &n.identity {
            Some(written) => {
                let key = super::written_path(dir, written.get_ref());
                confine.check_from(
                    dir,
                    &key,
                    (source, written.span()),
                    format_args!("ssh key `{}` of node `{name}`", written.get_ref()),
                )?;
                Some(key)
            }
            None => None,
        };
        nodes.push(Node {
            name,
            address,
            platforms: native,
            emulates,
            jobs: n.jobs.unwrap_or(1),
            identity,
        });
    }
    Ok(nodes)
}
