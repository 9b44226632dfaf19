//! What each podman version does with the Dockerfile features where it differs from BuildKit:
//! the one table `mab doctor` and the run's preflight judge a plan's reached stages by, and the
//! docs/podman.md's table is written from. Each row holds what was measured, on which version; a
//! version between two measurements that disagree is unknown (a warning, never a pass or a
//! failure), one before the first or after the last is taken to behave as that one.

use serde::Serialize;

/// A Dockerfile feature whose support differs between podman versions or from BuildKit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    Heredoc,
    CopyLink,
    CopyParents,
    CopyExclude,
    AddChecksum,
    AddUnpack,
    AddGit,
    RunNetwork,
    RunSecurity,
    RunMountSsh,
    CheckDirective,
    /// `FROM x-$TARGETOS` with no global `ARG TARGETOS`.
    FromPlatformArgs,
    /// `$BUILDPLATFORM` (and `BUILDOS`, ...) read with no build arg.
    BuildPlatform,
}

/// What one podman version does with a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Does {
    Builds,
    /// Fails the build, with podman's message (words its output holds: tests/e2e_features.rs
    /// checks them).
    Rejects(&'static str),
    /// Builds, differently from BuildKit: how.
    Differs(&'static str),
}

/// A podman version, as `podman version` says it (`4.3.1`, `5.4.2-dev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    pub fn parse(s: &str) -> Option<Self> {
        let core = s.trim().split(['-', '+', '~']).next()?;
        let mut parts = core.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next().unwrap_or(Ok(0)).ok()?;
        let patch = parts.next().unwrap_or(Ok(0)).ok()?;
        Some(Self(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

pub struct Row {
    pub feature: Feature,
    /// As a Dockerfile writes it.
    pub written: &'static str,
    /// What was measured, oldest version first.
    pub measured: &'static [(Version, Does)],
    /// How to write it so that every version builds it, for a version that rejects it.
    pub rewrite: &'static str,
    /// What mab does itself so that it works on every version, when it does.
    pub mab: Option<&'static str>,
}

const V4_3_1: Version = Version(4, 3, 1);
const V5_4_2: Version = Version(5, 4, 2);
const COPY_FLAGS: &str = "COPY only supports the --chmod=<permissions> --chown=<uid:gid> and the --from=<image|stage> flags";
const ADD_FLAGS: &str =
    "ADD only supports the --chmod=<permissions> and the --chown=<uid:gid> flag";
const RUN_FLAGS: &str = "RUN only supports the --mount flag";
const NO_AGENT: &str = "the step runs with no SSH agent unless the build is given `--ssh default`, which mab does not pass";
const CHECK_COMMENT: &str = "it is a comment: no build checks run";

/// The table: every row measured by `podman build` on Debian 12's 4.3.1 (buildah 1.28) and
/// Debian 13's 5.4.2 (buildah 1.39.3); tests/e2e_features.rs measures each again on the podman
/// at hand (scripts/test.sh on 4.3.1, scripts/podman5-root.sh on 5.4.2) and checks it here.
pub const TABLE: &[Row] = &[
    Row {
        feature: Feature::Heredoc,
        written: "a heredoc (`RUN <<EOF`, `COPY <<EOF`)",
        measured: &[
            // Its lines are read as instructions: `echo hi` fails as instruction ECHO.
            (V4_3_1, Does::Rejects("Unknown instruction")),
            (V5_4_2, Does::Builds),
        ],
        rewrite: "write the heredoc's lines to a script file that the Dockerfile COPYs and RUNs",
        mab: None,
    },
    Row {
        feature: Feature::CopyLink,
        written: "`COPY --link` / `ADD --link`",
        measured: &[
            (V4_3_1, Does::Rejects(COPY_FLAGS)),
            (V5_4_2, Does::Rejects("COPY --link is not supported")),
        ],
        rewrite: "drop `--link`: it only changes how BuildKit caches the layer",
        mab: None,
    },
    Row {
        feature: Feature::CopyParents,
        written: "`COPY --parents`",
        measured: &[
            (V4_3_1, Does::Rejects(COPY_FLAGS)),
            (V5_4_2, Does::Rejects("COPY --parents is not supported")),
        ],
        rewrite: "copy each directory to its full destination path, one COPY per directory",
        mab: None,
    },
    Row {
        feature: Feature::CopyExclude,
        written: "`COPY --exclude`",
        measured: &[
            (V4_3_1, Does::Rejects(COPY_FLAGS)),
            (
                V5_4_2,
                Does::Differs(
                    "its patterns match from the context's root: `COPY --exclude=*.log src/ /dst/` still copies src/b.log",
                ),
            ),
        ],
        rewrite: "leave the files out with the context's .containerignore, or delete them in a later RUN of a build stage",
        mab: None,
    },
    Row {
        feature: Feature::AddChecksum,
        written: "`ADD --checksum`",
        measured: &[(V4_3_1, Does::Rejects(ADD_FLAGS)), (V5_4_2, Does::Builds)],
        rewrite: "download in a RUN and check the sum there (`echo \"SUM  FILE\" | sha256sum -c`)",
        mab: None,
    },
    Row {
        feature: Feature::AddUnpack,
        written: "`ADD --unpack`",
        measured: &[
            (V4_3_1, Does::Rejects(ADD_FLAGS)),
            (
                V5_4_2,
                Does::Rejects(
                    "ADD only supports the --chmod=<permissions>, --chown=<uid:gid>, --checksum=<checksum>, --link, --keep-git-dir, and --exclude=<pattern> flags",
                ),
            ),
        ],
        rewrite: "ADD a local archive without the flag (it is unpacked), or unpack it in a RUN",
        mab: None,
    },
    Row {
        feature: Feature::AddGit,
        written: "`ADD <git URL>`",
        measured: &[
            (
                V4_3_1,
                Does::Differs("the URL is fetched as a plain file, not cloned"),
            ),
            (V5_4_2, Does::Builds),
        ],
        rewrite: "clone in a RUN (`git clone --depth 1 URL`), or pass the checkout as a named context",
        mab: None,
    },
    Row {
        feature: Feature::RunNetwork,
        written: "`RUN --network`",
        measured: &[(V4_3_1, Does::Rejects(RUN_FLAGS)), (V5_4_2, Does::Builds)],
        rewrite: "drop the flag: the step gets the build's network",
        mab: None,
    },
    Row {
        feature: Feature::RunSecurity,
        written: "`RUN --security`",
        measured: &[
            (V4_3_1, Does::Rejects(RUN_FLAGS)),
            (
                V5_4_2,
                Does::Rejects("RUN only supports the --mount and --network flag"),
            ),
        ],
        rewrite: "drop the flag; a step that needs privileges cannot run in a podman build",
        mab: None,
    },
    Row {
        feature: Feature::RunMountSsh,
        written: "`RUN --mount=type=ssh`",
        measured: &[
            (V4_3_1, Does::Differs(NO_AGENT)),
            (V5_4_2, Does::Differs(NO_AGENT)),
        ],
        rewrite: "fetch with a token from a `--mount=type=secret` instead",
        mab: None,
    },
    Row {
        feature: Feature::CheckDirective,
        written: "a `# check=` directive",
        measured: &[
            (V4_3_1, Does::Differs(CHECK_COMMENT)),
            (V5_4_2, Does::Differs(CHECK_COMMENT)),
        ],
        rewrite: "run the checks with `docker build --check` where BuildKit is at hand",
        mab: None,
    },
    Row {
        feature: Feature::FromPlatformArgs,
        written: "`FROM x-$TARGETOS` with no global `ARG TARGETOS`",
        measured: &[
            // The variable expands to nothing: `FROM x-`.
            (V4_3_1, Does::Rejects("invalid reference format")),
            (V5_4_2, Does::Builds),
        ],
        rewrite: "declare it before the first FROM: `ARG TARGETOS`",
        mab: Some(
            "its copy of the Dockerfile declares the platform ARGs that FROM lines use at its top",
        ),
    },
    Row {
        feature: Feature::BuildPlatform,
        written: "`$BUILDPLATFORM` with no build arg",
        measured: &[
            (
                V4_3_1,
                Does::Differs(
                    "empty in FROM lines, so `FROM --platform=$BUILDPLATFORM` runs on the target platform; a stage's `ARG BUILDPLATFORM` gets it",
                ),
            ),
            (V5_4_2, Does::Builds),
        ],
        rewrite: "pass `--build-arg BUILDPLATFORM=...`",
        mab: Some(
            "it passes BUILDPLATFORM, BUILDOS, BUILDARCH and BUILDVARIANT as build args when the Dockerfile names them",
        ),
    },
];

pub fn row(feature: Feature) -> &'static Row {
    TABLE
        .iter()
        .find(|r| r.feature == feature)
        .expect("every feature has a row")
}

/// What `version` does with a row's feature, as far as the measurements say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// As measured on that version (`version` itself, or the nearest measured one with no
    /// disagreeing measurement between).
    Known(Does, Version),
    /// Between two measured versions that disagree.
    Unknown {
        below: (Version, Does),
        above: (Version, Does),
    },
}

impl Row {
    pub fn verdict(&self, version: Version) -> Verdict {
        let below = self.measured.iter().rev().find(|(v, _)| *v <= version);
        let above = self.measured.iter().find(|(v, _)| *v >= version);
        match (below, above) {
            (Some(&(v, does)), None) | (None, Some(&(v, does))) => Verdict::Known(does, v),
            // Both reject (or both differ), maybe in other words: so does every version between.
            (Some(&b), Some(&a))
                if std::mem::discriminant(&b.1) == std::mem::discriminant(&a.1) =>
            {
                Verdict::Known(b.1, if b.0 == version { b.0 } else { a.0 })
            }
            (Some(&below), Some(&above)) => Verdict::Unknown { below, above },
            (None, None) => unreachable!("every row has a measurement"),
        }
    }

    /// The oldest measured version that builds it, if any.
    pub fn builds_from(&self) -> Option<Version> {
        self.measured
            .iter()
            .find(|(_, d)| *d == Does::Builds)
            .map(|(v, _)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_as_podman_prints_them() {
        assert_eq!(Version::parse("4.3.1"), Some(Version(4, 3, 1)));
        assert_eq!(Version::parse("5.4.2-dev"), Some(Version(5, 4, 2)));
        assert_eq!(Version::parse("4.3.1-stand-in"), Some(Version(4, 3, 1)));
        assert_eq!(Version::parse("5.0"), Some(Version(5, 0, 0)));
        assert_eq!(Version::parse("dev"), None);
    }

    #[test]
    fn a_version_between_disagreeing_measurements_is_unknown() {
        let heredoc = row(Feature::Heredoc);
        assert!(matches!(
            heredoc.verdict(Version(4, 3, 1)),
            Verdict::Known(Does::Rejects(_), _)
        ));
        assert!(matches!(
            heredoc.verdict(Version(4, 9, 3)),
            Verdict::Unknown { .. }
        ));
        assert_eq!(
            heredoc.verdict(Version(5, 6, 0)),
            Verdict::Known(Does::Builds, V5_4_2)
        );
        // Rejected by both ends: rejected between.
        assert!(matches!(
            row(Feature::CopyLink).verdict(Version(4, 9, 3)),
            Verdict::Known(Does::Rejects(_), _)
        ));
    }

    #[test]
    fn every_feature_has_one_row() {
        let mut seen: Vec<Feature> = TABLE.iter().map(|r| r.feature).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), TABLE.len());
        assert!(TABLE.iter().all(|r| !r.measured.is_empty()));
    }
}
