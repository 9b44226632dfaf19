//! A build's `podman build` command, from what it is made of: one field per flag, in the
//! order podman is given them.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::SecretSource;
use crate::platform::Platform;

use super::command::{Arg, Command, CommandKind};

/// Where the registry cache of a layered build is read and written.
pub(super) struct CacheRefs {
    pub from: Option<String>,
    /// None with `--no-push`: nothing leaves the machine, cache layers neither.
    pub to: Option<String>,
}

/// The parts of one `podman build`.
pub(super) struct BuildCommand<'a> {
    /// The podman program and global options, then the build node's.
    pub podman: &'a [String],
    pub node_args: &'a [String],
    pub platform: &'a Platform,
    pub iidfile: &'a str,
    /// The Dockerfile `--file` names (the labeled copy, if any).
    pub file: String,
    /// The local image it tags.
    pub tag: &'a str,
    /// A base of the build may have moved in its registry (`--pull=newer`).
    pub pull_newer: bool,
    pub cache: Option<CacheRefs>,
    /// `--tls-verify=false`.
    pub insecure: bool,
    pub timestamp: Option<i64>,
    pub target: Option<&'a str>,
    pub args: &'a BTreeMap<String, Arg>,
    /// None when the labels are in the Dockerfile's copy.
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// The labels that change with every commit (mab's revision, created and version).
    pub per_run_labels: &'a [String],
    pub annotations: &'a BTreeMap<String, String>,
    pub contexts: &'a BTreeMap<String, Arg>,
    pub secrets: &'a BTreeMap<String, SecretSource>,
    pub ignorefile: Option<&'a str>,
    pub context: &'a Path,
}

impl BuildCommand<'_> {
    pub fn command(&self) -> Command {
        // The node's options are global ones: they send the build there.
        let prefix = self.podman.iter().chain(self.node_args);
        let mut c = Command::new(CommandKind::Build, prefix, std::iter::empty::<Arg>());
        // Where it writes the id and which copy of the Dockerfile it reads (the content is
        // hashed apart) are no inputs of the image; nor, below, the time stamp, the labels
        // that change with every run and the ignore file (its patterns decide the context's
        // digest).
        c.args([
            "build".into(),
            "--platform".into(),
            self.platform.to_string(),
        ])
        .args_apart(["--iidfile", self.iidfile])
        .args_apart(["--file".into(), self.file.clone()])
        .args(["--tag", self.tag]);
        if self.pull_newer {
            c.arg("--pull=newer");
        }
        if let Some(cache) = &self.cache {
            // The registry cache works on the steps of a layered build only.
            c.arg("--layers");
            for (flag, repo) in [("--cache-from", &cache.from), ("--cache-to", &cache.to)] {
                if let Some(repo) = repo {
                    c.args([flag, repo]);
                }
            }
        }
        if self.insecure {
            c.arg("--tls-verify=false");
        }
        if let Some(epoch) = self.timestamp {
            c.args_apart(["--timestamp".into(), epoch.to_string()]);
        }
        if let Some(t) = self.target {
            c.args(["--target", t]);
        }
        for (k, v) in self.args {
            c.arg("--build-arg")
                .arg(v.clone().prefixed(&format!("{k}=")));
        }
        for (k, v) in self.labels.into_iter().flatten() {
            let label = ["--label".into(), format!("{k}={v}")];
            match self.per_run_labels.contains(k) {
                true => c.args_apart(label),
                false => c.args(label),
            };
        }
        for (k, v) in self.annotations {
            c.args(["--annotation".into(), format!("{k}={v}")]);
        }
        for (k, v) in self.contexts {
            c.arg("--build-context")
                .arg(v.clone().prefixed(&format!("{k}=")));
        }
        // Where podman reads each secret from; mab never reads the value into the plan.
        for (id, source) in self.secrets {
            let spec = match source {
                SecretSource::File(path) => format!("id={id},src={}", path.display()),
                SecretSource::Env(var) => format!("id={id},env={var}"),
            };
            c.args(["--secret".into(), spec]);
        }
        if let Some(f) = self.ignorefile {
            c.args_apart(["--ignorefile", f]);
        }
        c.arg(self.context.display().to_string());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_it_runs_and_writes_and_per_run_labels_are_no_inputs() {
        let empty = BTreeMap::new();
        let labels = BTreeMap::from([
            ("a".to_string(), "1".to_string()),
            ("created".to_string(), "now".to_string()),
        ]);
        let args = BTreeMap::from([("B".to_string(), Arg::from("x"))]);
        let command = BuildCommand {
            podman: &["podman".into()],
            node_args: &["--url".into(), "ssh://n".into()],
            platform: &"linux/arm64".parse().unwrap(),
            iidfile: ".mab/iid/x",
            file: ".mab/dockerfiles/x".into(),
            tag: "localhost/mab/x:linux-arm64",
            pull_newer: false,
            cache: None,
            insecure: false,
            timestamp: Some(1),
            target: None,
            args: &args,
            labels: Some(&labels),
            per_run_labels: &["created".into()],
            annotations: &empty,
            contexts: &BTreeMap::new(),
            secrets: &BTreeMap::new(),
            ignorefile: Some(".mab/ignore/x"),
            context: Path::new("x"),
        }
        .command();
        assert_eq!(command.argv().len(), 23);
        let inputs: Vec<_> = command.input_words().collect();
        assert_eq!(
            inputs,
            [
                "build",
                "--platform",
                "linux/arm64",
                "--tag",
                "localhost/mab/x:linux-arm64",
                "--build-arg",
                "B=x",
                "--label",
                "a=1",
                "x"
            ]
        );
    }
}
