//! A command of the plan: what it does ([`CommandKind`]) and its arguments, some of which stand
//! for a value the run learns only while it runs ([`Hole`]: the digest another node pushed, the
//! id of the image just built, the digest of the index just pushed). The plan shows a hole as
//! its placeholder text (`<digest of api@linux-arm64>`); a run fills it with [`Command::fill`],
//! which knows holes by their type, never by searching the text.

use std::borrow::Cow;
use std::fmt;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use crate::platform::Platform;

/// What a command does: a failure is named by it, never by reading the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// `podman build` of one platform's image.
    Build,
    /// `podman push` of an image built on another node, for the lists to read by digest.
    PushImage,
    /// `podman manifest rm` of a list an earlier run left.
    ManifestRemove,
    /// `podman manifest create`.
    ManifestCreate,
    /// `podman manifest add` of one platform's image.
    ManifestAdd,
    /// `podman manifest push --all` of an assembled list.
    ManifestPush,
    /// `skopeo inspect --raw`: what a reference holds.
    Inspect,
    /// `skopeo copy --all --preserve-digests`: a tag pointed at an index or image in the registry.
    Copy,
}

impl CommandKind {
    /// The subcommand word a person knows the command by (`build`, `manifest`, `inspect`,
    /// `copy`), as failures name it after the program (`podman build`); none for a push.
    pub fn subcommand(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::PushImage => "",
            Self::ManifestRemove
            | Self::ManifestCreate
            | Self::ManifestAdd
            | Self::ManifestPush => "manifest",
            Self::Inspect => "inspect",
            Self::Copy => "copy",
        }
    }
}

/// A value a command needs that the run learns only as it goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Hole {
    /// The digest under which build `id`'s node pushed its image (a build on another node).
    DigestOf(String),
    /// The id of the image the build writes (its own push from another node names it).
    ImageId,
    /// The digest of the index a list's publication pushed.
    PushedIndex,
    /// The digest of one platform's image in the pushed index.
    ImageOf(Platform),
    /// The digest a tag held before the run (`--atomic`'s restore).
    Held,
}

impl fmt::Display for Hole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DigestOf(id) => write!(f, "<digest of {id}>"),
            Self::ImageId => f.write_str("<image id>"),
            Self::PushedIndex => f.write_str("<digest of the pushed index>"),
            Self::ImageOf(p) => write!(f, "<digest of its {p} image>"),
            Self::Held => f.write_str("<digest it held>"),
        }
    }
}

/// One argument: literal text, or text around a [`Hole`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Lit(String),
    Holed(Box<Holed>),
}

/// An argument with a hole in it: `before`, the hole's value, `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holed {
    pub before: String,
    pub hole: Hole,
    pub after: String,
}

impl Arg {
    pub fn holed(before: impl Into<String>, hole: Hole, after: impl Into<String>) -> Self {
        Self::Holed(Box::new(Holed {
            before: before.into(),
            hole,
            after: after.into(),
        }))
    }

    /// `prefix`, then the argument.
    pub fn prefixed(self, prefix: &str) -> Self {
        match self {
            Self::Lit(s) => Self::Lit(format!("{prefix}{s}")),
            Self::Holed(mut h) => {
                h.before.insert_str(0, prefix);
                Self::Holed(h)
            }
        }
    }

    /// The text shown: a hole as its placeholder.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Lit(s) => Cow::Borrowed(s),
            Self::Holed(h) => Cow::Owned(format!("{}{}{}", h.before, h.hole, h.after)),
        }
    }

    pub fn hole(&self) -> Option<&Hole> {
        match self {
            Self::Lit(_) => None,
            Self::Holed(h) => Some(&h.hole),
        }
    }

    /// The literal text, if the argument has no hole.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Self::Lit(s) => Some(s),
            Self::Holed(_) => None,
        }
    }

    /// The argument with its hole filled, if `known` knows the value.
    pub fn fill(&self, known: impl Fn(&Hole) -> Option<String>) -> Self {
        match self {
            Self::Holed(h) => match known(&h.hole) {
                Some(value) => Self::Lit(format!("{}{value}{}", h.before, h.after)),
                None => self.clone(),
            },
            Self::Lit(_) => self.clone(),
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lit(s) => f.write_str(s),
            Self::Holed(h) => write!(f, "{}{}{}", h.before, h.hole, h.after),
        }
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Self {
        Self::Lit(s)
    }
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Self::Lit(s.to_string())
    }
}

impl From<&String> for Arg {
    fn from(s: &String) -> Self {
        Self::Lit(s.clone())
    }
}

impl Serialize for Arg {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Lit(text) => s.serialize_str(text),
            Self::Holed(_) => s.collect_str(self),
        }
    }
}

/// A command line of the plan: the program first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub kind: CommandKind,
    args: Vec<Arg>,
}

impl Command {
    /// `kind`, run as `prefix` (the program and its global options) and then `args`.
    pub fn new<P, A>(kind: CommandKind, prefix: P, args: A) -> Self
    where
        P: IntoIterator,
        P::Item: Into<Arg>,
        A: IntoIterator,
        A::Item: Into<Arg>,
    {
        let mut all: Vec<Arg> = prefix.into_iter().map(Into::into).collect();
        all.extend(args.into_iter().map(Into::into));
        Self { kind, args: all }
    }

    /// Adds an argument at the end.
    pub fn arg(&mut self, arg: impl Into<Arg>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Adds arguments at the end.
    pub fn args<A>(&mut self, args: A) -> &mut Self
    where
        A: IntoIterator,
        A::Item: Into<Arg>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The program run.
    pub fn program(&self) -> Cow<'_, str> {
        self.args.first().map_or(Cow::Borrowed(""), Arg::text)
    }

    pub fn arguments(&self) -> &[Arg] {
        &self.args
    }

    /// For the few rewrites a run makes of a command it was handed (by typed position, such as
    /// the entry of a `manifest add`).
    pub fn arguments_mut(&mut self) -> &mut Vec<Arg> {
        &mut self.args
    }

    /// Each argument's text, holes shown as placeholders.
    pub fn words(&self) -> impl Iterator<Item = Cow<'_, str>> {
        self.args.iter().map(Arg::text)
    }

    /// The argument vector, holes shown as placeholders.
    pub fn argv(&self) -> Vec<String> {
        self.args.iter().map(ToString::to_string).collect()
    }

    /// The command as a line a person can paste into a POSIX shell.
    pub fn shell_line(&self) -> String {
        super::shell_line(&self.argv())
    }

    /// The holes left in it.
    pub fn holes(&self) -> impl Iterator<Item = &Hole> {
        self.args.iter().filter_map(Arg::hole)
    }

    /// The command with each hole `known` knows the value of filled.
    pub fn fill(&self, known: impl Fn(&Hole) -> Option<String>) -> Self {
        Self {
            kind: self.kind,
            args: self.args.iter().map(|a| a.fill(&known)).collect(),
        }
    }
}

impl Serialize for Command {
    /// As the argument vector: the plan's JSON shows a hole as its placeholder.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.args.len()))?;
        for a in &self.args {
            seq.serialize_element(a)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_show_as_placeholders_and_fill_by_type() {
        let platform: Platform = "linux/arm64".parse().unwrap();
        let mut c = Command::new(CommandKind::Copy, ["skopeo"], ["copy"]);
        c.arg(Arg::holed(
            "docker://r/x@",
            Hole::ImageOf(platform.clone()),
            "",
        ))
        .arg(Arg::holed("docker://r/x@", Hole::PushedIndex, "!"));
        assert_eq!(
            c.argv(),
            [
                "skopeo",
                "copy",
                "docker://r/x@<digest of its linux/arm64 image>",
                "docker://r/x@<digest of the pushed index>!"
            ]
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            serde_json::to_string(&c.argv()).unwrap()
        );
        let filled = c.fill(|h| (*h == Hole::ImageOf(platform.clone())).then(|| "sha256:1".into()));
        assert_eq!(filled.argv()[2], "docker://r/x@sha256:1");
        assert_eq!(filled.holes().collect::<Vec<_>>(), [&Hole::PushedIndex]);
    }
}
