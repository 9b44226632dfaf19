//! The command line as clap parses it: these types say what a user may type, never what it
//! means; `crate::settings` resolves them, once per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::platform::Platform;
use crate::progress;

#[derive(Debug, Parser)]
#[command(
    name = "mab",
    version,
    about = "Multi-arch image builds with podman: plan, build, publish manifest lists"
)]
pub struct Cli {
    /// Speak to a CI: GitHub Actions (job summary, annotations, step outputs, log groups) or
    /// GitLab CI (log sections); auto: by `GITHUB_ACTIONS=true` / `GITLAB_CI=true`.
    #[arg(long, global = true, value_enum, default_value_t = crate::ci::CiArg::Auto)]
    pub(crate) ci: crate::ci::CiArg,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show every build and manifest list `mab run` would make, without running anything.
    Plan {
        #[command(flatten)]
        target: Target,
        /// Output format: text for people, json for tools, dot for Graphviz.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Read the registry and leave out what a run would not build: the images whose
        /// inputs (files, Dockerfile, args, base image digests) are published already.
        #[arg(long)]
        check_registry: bool,
    },
    /// Build every image of the plan for every platform and publish one manifest list per tag.
    Run {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Join the images split runs pushed (`mab run --platform P --digests-out FILE`, one per
    /// runner) into the manifest lists, and publish each to every tag; nothing is pushed
    /// unless every platform of every list is in some FILE.
    Merge {
        /// The digests files of the runners.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The config file (default: multiarch.toml here or in the nearest parent directory).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        /// Every multiarch.toml under this directory, as one plan (as the runners had it).
        #[arg(long, conflicts_with = "file")]
        all: bool,
        /// Override a `[vars]` entry (repeatable), as the runners did.
        #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        #[command(flatten)]
        allow: Allow,
        #[command(flatten)]
        out: MergeArgs,
    },
    /// Print the JSON schema of multiarch.toml.
    Schema,
    /// Write a starter multiarch.toml next to a Dockerfile (never over an existing one).
    Init {
        /// The Dockerfile (default: ./Dockerfile).
        #[arg(default_value = "Dockerfile")]
        dockerfile: PathBuf,
    },
    /// Print a shell completion script: `mab completions bash > /etc/bash_completion.d/mab`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print mab's man page (roff): `mab man > /usr/local/share/man/man1/mab.1`.
    Man,
    /// Check this machine for what would stop a run (and the config's platforms and
    /// registries, if there is one), with the fix for each problem.
    Doctor {
        /// The config file (default: multiarch.toml here or in the nearest parent, if any).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
        #[command(flatten)]
        allow: Allow,
    },
    /// Write a signing key pair in cosign's format: PREFIX.key (encrypted with
    /// COSIGN_PASSWORD) and PREFIX.pub, for `[signing] key = "PREFIX.key"`.
    Keygen {
        /// Where to write the pair (never over an existing file).
        #[arg(long, value_name = "PREFIX", default_value = "cosign")]
        output_key_prefix: PathBuf,
    },
    /// Check what the registry holds for every tag of the plan: each index and its platforms
    /// against the plan, and the signature of the index and of every platform's image with the
    /// public key. Exit 1 on any miss.
    Verify {
        #[command(flatten)]
        target: Target,
        /// The public key (PEM); default: the `.pub` beside `[signing] key`.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
    /// Internal: the reaper `mab run` starts, which stops the run's commands if mab dies.
    #[command(name = "__reap", hide = true)]
    Reap,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Builds at once (default: the number of CPUs); as many manifest list jobs may run beside
    /// them, as they mostly wait on the registry.
    #[arg(short = 'j', long, value_name = "N")]
    pub(crate) jobs: Option<usize>,
    /// After a failure, go on with everything that does not depend on it.
    #[arg(long)]
    pub(crate) keep_going: bool,
    /// Push no tag anywhere until every build of the run has succeeded; if a publication then
    /// fails (or the run is interrupted), put every tag the run moved back to what it held.
    #[arg(long)]
    pub(crate) atomic: bool,
    /// Build and assemble local manifest lists, push nothing.
    #[arg(long)]
    pub(crate) no_push: bool,
    /// Progress display: bars on a terminal, plain lines elsewhere (auto), or either always.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto)]
    pub(crate) progress: progress::Mode,
    /// Print only failures and the final verdict (same as `--progress quiet`).
    #[arg(short, long, conflicts_with = "verbose")]
    pub(crate) quiet: bool,
    /// Show each command as it starts.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Write a JSON report of the run (image ids, digests, tags pushed) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per build, list push and tag verification) to
    /// FILE, for CI test report views.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// Write where the time went as Chrome trace-event JSON to FILE (open it in
    /// chrome://tracing or https://ui.perfetto.dev); every run also draws timeline.svg in its
    /// run directory.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,
    /// Be one runner of a split build: build the `--platform`s only, push each image by
    /// digest (no list, no release tag) and write what was pushed to FILE, for `mab merge`.
    #[arg(long, value_name = "FILE", requires = "platforms", conflicts_with_all = ["no_push", "atomic"])]
    pub(crate) digests_out: Option<PathBuf>,
    /// Build everything, even images whose inputs the registry already holds.
    #[arg(long)]
    pub(crate) rebuild: bool,
    /// A build running longer fails, e.g. `30m` (overrides `[builder] timeout`).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) timeout: Option<std::time::Duration>,
    /// A command that talks to a registry running longer is stopped and retried, e.g. `30m`
    /// (overrides `[builder] registry_timeout`; default 15m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) registry_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// Lists published at once.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 4)]
    pub(crate) jobs: usize,
    /// Progress display: bars on a terminal, plain lines elsewhere (auto), or either always.
    #[arg(long, value_enum, default_value_t = progress::Mode::Auto)]
    pub(crate) progress: progress::Mode,
    /// Show each command as it starts.
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Write a JSON report of the merge (lists, tags, digests) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,
    /// Write a JUnit XML report (one test case per list push and tag verification) to FILE.
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
    /// A command that talks to a registry running longer is stopped and retried, e.g. `30m`.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) registry_timeout: Option<std::time::Duration>,
}

/// What to work on: the config, the images and platforms in it, variable overrides.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// Image names, instance names, qualified names (`services/api:api`) or globs (`api-*`);
    /// their dependencies come along (not with --changed-since).
    pub(crate) images: Vec<String>,
    /// The config file (default: multiarch.toml here or in the nearest parent directory; else,
    /// in a git work tree, every multiarch.toml below).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Every multiarch.toml under this directory, as one plan (skipping .git, target,
    /// node_modules, hidden directories and what .gitignore/.ignore exclude).
    #[arg(long, conflicts_with = "file")]
    pub(crate) all: bool,
    /// Only images whose files changed since this git revision (committed or not), and the
    /// images that depend on them.
    #[arg(long, value_name = "REV")]
    pub(crate) changed_since: Option<String>,
    /// Only these platforms (repeatable), e.g. `--platform linux/arm64`.
    #[arg(long = "platform", value_name = "PLATFORM", value_parser = parse_platform)]
    pub(crate) platforms: Vec<Platform>,
    /// Override a `[vars]` entry (repeatable), e.g. `--var version=1.5.0`.
    #[arg(long = "var", value_name = "KEY=VALUE", value_parser = parse_var)]
    pub(crate) vars: Vec<(String, String)>,
    #[command(flatten)]
    pub(crate) allow: Allow,
}

/// What the config may read outside its repository: only the command line says.
#[derive(Debug, Args)]
pub(crate) struct Allow {
    /// Let the config read PATH and everything below it, outside its repository (repeatable),
    /// e.g. `--allow fs.read=$HOME/.npmrc` for a secret file.
    #[arg(long = "allow", value_name = "fs.read=PATH")]
    pub(crate) entries: Vec<crate::confine::Entitlement>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Dot,
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    s.parse::<Platform>().map_err(|e| match e.suggestion() {
        Some(hint) => format!("{e} (did you mean `{hint}`?)"),
        None => e.to_string(),
    })
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
