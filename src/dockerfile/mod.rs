//! What a build reads from its Dockerfile: the stages the built target reaches, and for each of
//! them the images and named contexts it reads (`FROM`, `COPY --from`, `RUN --mount=from`) on the
//! platform it reads them, and whether it `RUN`s anything on that platform.
//!
//! The grammar (parser directives, escapes, continuations, heredocs, `ONBUILD`) is BuildKit's
//! parser's ([`parse`]); the variable rules are BuildKit's shell lexer's ([`shell`]); the
//! platform rules are podman 4.3.1's, measured
//! (DEVELOPERS.md): a stage `FROM` another stage runs on that stage's platform, and what a stage
//! copies or mounts from an image is read on the stage's platform.

mod check;
mod eval;
mod labels;
mod parse;
mod shell;
mod stages;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::platform::Platform;

pub use eval::{EvalError, Inputs, Read, Reads};
pub use labels::label_instruction;
pub use shell::{MAX_NESTING, Vars, expand};
pub use stages::{Dockerfile, Via};

/// The ignore file podman reads for a build context: `.containerignore`, else `.dockerignore`.
pub fn context_ignore_file(context: &Path) -> Option<PathBuf> {
    [".containerignore", ".dockerignore"]
        .iter()
        .map(|name| context.join(name))
        .find(|p| p.is_file())
}

/// The Dockerfile's own ignore file (`Dockerfile.containerignore`, else `.dockerignore`), which
/// podman reads instead of the context's.
pub fn dockerfile_ignore_file(dockerfile: &Path) -> Option<PathBuf> {
    [".containerignore", ".dockerignore"]
        .iter()
        .map(|ext| {
            let mut p = dockerfile.as_os_str().to_owned();
            p.push(ext);
            PathBuf::from(p)
        })
        .find(|p| p.is_file())
}

/// The build args podman 4.3.1 does not set itself but BuildKit does, and cross-compiling
/// Dockerfiles read: mab passes those a Dockerfile names.
pub const BUILD_PLATFORM_ARGS: [&str; 4] =
    ["BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

/// The automatic args of the target platform, which podman sets in stages but (4.3.1) leaves
/// empty in `FROM` lines unless a global `ARG` declares them.
pub const TARGET_PLATFORM_ARGS: [&str; 4] =
    ["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"];

/// The automatic platform args of a build, `TARGET*` for the target and `BUILD*` for the machine
/// that builds.
pub fn platform_args(target: &Platform, build: &Platform) -> BTreeMap<String, String> {
    let mut args = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        args.insert(format!("{prefix}PLATFORM"), p.to_string());
        args.insert(format!("{prefix}OS"), p.os().to_string());
        args.insert(format!("{prefix}ARCH"), p.arch().to_string());
        args.insert(
            format!("{prefix}VARIANT"),
            p.variant().unwrap_or_default().to_string(),
        );
    }
    args
}

pub use parse::Error as ParseError;

#[cfg(test)]
mod tests;
