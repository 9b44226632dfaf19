//! A command of the plan: what it does ([`CommandKind`]) and its arguments, some of which stand
//! for a value the run learns only while it runs ([`Hole`]: the digest another node pushed, the
//! id of the image just built, the digest of the index just pushed). The plan shows a hole as
//! its placeholder text (`<digest of api@linux-arm64>`); a run fills it with [`Command::fill`],
//! which knows holes by their type, never by searching the text.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};

use crate::platform::Platform;
use crate::reference::Pinned;

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
    /// `skopeo copy --all --preserve-digests`: a tag pointed at an index or image in the registry
    /// (or a signature or attachment between the registry and a local layout).
    Copy,
    /// `podman manifest inspect` of a local list (or, through podman, a registry's).
    ManifestInspect,
    /// `podman image inspect`.
    ImageInspect,
    /// `podman image mount` (an SBOM reads the image's files).
    ImageMount,
    /// `podman image unmount`.
    ImageUnmount,
    /// `podman save --format oci-dir`: the content check of a storage driver whose layers are
    /// not directories it reads.
    ImageSave,
    /// `podman version`.
    Version,
    /// syft, run through `env` for its settings: an SBOM.
    Syft,
}

impl CommandKind {
    /// The subcommand word a person knows the command by (`build`, `manifest`, `inspect`,
    /// `copy`), as failures name it after the program (`podman build`); none for a push.
    pub fn subcommand(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::PushImage => "push",
            Self::ManifestRemove
            | Self::ManifestCreate
            | Self::ManifestAdd
            | Self::ManifestPush
            | Self::ManifestInspect => "manifest",
            Self::Inspect => "inspect",
            Self::Copy => "copy",
            Self::ImageInspect | Self::ImageMount | Self::ImageUnmount => "image",
            Self::ImageSave => "save",
            Self::Version => "version",
            Self::Syft => "",
        }
    }

    /// The subcommand's words in full (`manifest push`), as a registry step is named.
    pub fn words(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::PushImage => "push",
            Self::ManifestRemove => "manifest rm",
            Self::ManifestCreate => "manifest create",
            Self::ManifestAdd => "manifest add",
            Self::ManifestPush => "manifest push",
            Self::ManifestInspect => "manifest inspect",
            Self::Inspect => "inspect",
            Self::Copy => "copy",
            Self::ImageInspect => "image inspect",
            Self::ImageMount => "image mount",
            Self::ImageUnmount => "image unmount",
            Self::ImageSave => "save",
            Self::Version => "version",
            Self::Syft => "",
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
    /// The signature tag (`sha256-HEX.sig`) of the image a signing step signs: the pushed
    /// index (no platform) or one platform's image.
    SignatureTag(Option<Platform>),
    /// The signature tag of the artifact of this type (an SBOM, a provenance statement)
    /// attached to one platform's image.
    AttachmentSignatureTag(Platform, String),
    /// The OCI layout directory a signing step writes the signature manifest into.
    SignatureLayout,
}

impl fmt::Display for Hole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DigestOf(id) => write!(f, "<digest of {id}>"),
            Self::ImageId => f.write_str("<image id>"),
            Self::PushedIndex => f.write_str("<digest of the pushed index>"),
            Self::ImageOf(p) => write!(f, "<digest of its {p} image>"),
            Self::Held => f.write_str("<digest it held>"),
            Self::SignatureTag(None) => f.write_str("<signature tag of the pushed index>"),
            Self::SignatureTag(Some(p)) => write!(f, "<signature tag of its {p} image>"),
            Self::AttachmentSignatureTag(p, kind) => write!(
                f,
                "<signature tag of {}>",
                crate::sign::steps::what(Some(p), Some(kind))
            ),
            Self::SignatureLayout => f.write_str("<signature layout>"),
        }
    }
}

/// One argument: literal text, text around a [`Hole`], or text before a dependency's image in
/// this machine's storage ([`Local`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Lit(String),
    Holed(Box<Holed>),
    Local(Box<Local>),
}

/// How a build is pointed at a dependency's image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageForm {
    /// As a reference (a build arg's value): `IMAGE`.
    Reference,
    /// As a build context: `container-image://IMAGE` in local storage, `docker-image://IMAGE`
    /// in a registry.
    Context,
    /// As a `manifest add`'s source: `containers-storage:IMAGE`. Read from a registry, it is
    /// the command's registry reference instead ([`Command::set_last_registry`]).
    Storage,
}

/// An argument that names the image build `build` makes in this machine's storage: `before`,
/// then `image` as `form` says. Not a hole: the image is known when the plan is made. It is
/// typed so that a run that finds the build's list published unchanged reads the registry's
/// image instead ([`Arg::published`]), by the build's id and not by searching the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    pub before: String,
    pub build: String,
    pub image: String,
    pub form: ImageForm,
}

impl Local {
    fn fmt_with(&self, f: &mut impl fmt::Write) -> fmt::Result {
        let scheme = match self.form {
            ImageForm::Reference => "",
            ImageForm::Context => "container-image://",
            ImageForm::Storage => "containers-storage:",
        };
        write!(f, "{}{scheme}{}", self.before, self.image)
    }
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

    /// The image build `build` makes in this machine's storage, `image`, as `form` says.
    pub fn local(build: impl Into<String>, image: impl Into<String>, form: ImageForm) -> Self {
        Self::Local(Box::new(Local {
            before: String::new(),
            build: build.into(),
            image: image.into(),
            form,
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
            Self::Local(mut l) => {
                l.before.insert_str(0, prefix);
                Self::Local(l)
            }
        }
    }

    /// The text shown: a hole as its placeholder.
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Self::Lit(s) => Cow::Borrowed(s),
            _ => Cow::Owned(self.to_string()),
        }
    }

    pub fn hole(&self) -> Option<&Hole> {
        match self {
            Self::Lit(_) | Self::Local(_) => None,
            Self::Holed(h) => Some(&h.hole),
        }
    }

    /// The literal text, if the argument is plain text.
    pub fn literal(&self) -> Option<&str> {
        match self {
            Self::Lit(s) => Some(s),
            Self::Holed(_) | Self::Local(_) => None,
        }
    }

    /// The argument with its hole filled, if `known` knows the value.
    pub fn fill(&self, known: impl Fn(&Hole) -> Option<String>) -> Self {
        match self {
            Self::Holed(h) => match known(&h.hole) {
                Some(value) => Self::Lit(format!("{}{value}{}", h.before, h.after)),
                None => self.clone(),
            },
            Self::Lit(_) | Self::Local(_) => self.clone(),
        }
    }

    /// The argument with build `build`'s image read from the registry, as `image`: its local
    /// image in the form it has (a build context is then `docker-image://`), or the hole for
    /// the digest its node pushes filled with `image`'s.
    pub fn published(&self, build: &str, image: &Pinned) -> Self {
        match self {
            Self::Local(l) if l.build == build && l.form != ImageForm::Storage => {
                Self::Lit(match l.form {
                    ImageForm::Context => format!("{}docker-image://{image}", l.before),
                    _ => format!("{}{image}", l.before),
                })
            }
            _ => self.fill(|h| match h {
                Hole::DigestOf(b) if b == build => Some(image.digest.to_string()),
                _ => None,
            }),
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lit(s) => f.write_str(s),
            Self::Holed(h) => write!(f, "{}{}{}", h.before, h.hole, h.after),
            Self::Local(l) => l.fmt_with(f),
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
            Self::Holed(_) | Self::Local(_) => s.collect_str(self),
        }
    }
}

/// A command line of the plan: the program first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub kind: CommandKind,
    args: Vec<Arg>,
    /// Which argument is the `docker://` reference it reads or writes in a registry, when it
    /// talks to one ([`Command::registry`]): what gives it the registry deadlines.
    registry: Option<usize>,
    /// Its program runs on a podman service elsewhere (`--url`, `--connection`, `--remote`).
    remote: bool,
    /// How many arguments are the program and its global options (the prefix of
    /// [`Command::new`]).
    prefix: usize,
    /// Arguments that are no input of what the command makes ([`Command::args_apart`]).
    apart: Vec<Range<usize>>,
}

/// The global options by which podman sends a command to a service elsewhere.
fn is_remote(global: &[Arg]) -> bool {
    global.iter().filter_map(Arg::literal).any(|a| {
        ["--url", "--connection", "--remote", "-r", "-c"].contains(&a)
            || a.starts_with("--url=")
            || a.starts_with("--connection=")
    })
}

impl Command {
    /// `kind`, run as `prefix` (the program and its global options) and then `args`. Whether it
    /// runs elsewhere is read from the prefix here, once: the user's `MAB_PODMAN` and a node's
    /// address are the only places such options come from.
    pub fn new<P, A>(kind: CommandKind, prefix: P, args: A) -> Self
    where
        P: IntoIterator,
        P::Item: Into<Arg>,
        A: IntoIterator,
        A::Item: Into<Arg>,
    {
        let mut all: Vec<Arg> = prefix.into_iter().map(Into::into).collect();
        let remote = all.get(1..).is_some_and(is_remote);
        let prefix = all.len();
        all.extend(args.into_iter().map(Into::into));
        Self {
            kind,
            args: all,
            registry: None,
            remote,
            prefix,
            apart: Vec::new(),
        }
    }

    /// Adds arguments at the end that are no input of what the command makes: where it writes,
    /// a file whose content is hashed apart, a label that changes with every run. A build's
    /// input digest leaves them out ([`Command::input_words`]), told by this and not by
    /// reading the command line.
    pub fn args_apart<A>(&mut self, args: A) -> &mut Self
    where
        A: IntoIterator,
        A::Item: Into<Arg>,
    {
        let start = self.args.len();
        self.args(args);
        self.apart.push(start..self.args.len());
        self
    }

    /// Each argument's text that is an input of what the command makes: neither the program
    /// and its global options (where it runs) nor those added by [`Command::args_apart`].
    pub fn input_words(&self) -> impl Iterator<Item = Cow<'_, str>> {
        let apart = |i: usize| self.apart.iter().any(|r| r.contains(&i));
        self.args
            .iter()
            .enumerate()
            .skip(self.prefix)
            .filter(move |(i, _)| !apart(*i))
            .map(|(_, a)| a.text())
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

    /// Adds `reference` as `docker://REFERENCE`: the image it reads or writes in a registry.
    /// The command is then a registry step, with the registry's deadlines, told by this and
    /// not by who planned it. The last one added is the one a failure names (a copy's
    /// destination).
    pub fn registry(&mut self, reference: impl Into<Arg>) -> &mut Self {
        self.registry = Some(self.args.len());
        self.args.push(reference.into().prefixed("docker://"));
        self
    }

    /// The reference it reads or writes in a registry (without its `docker://`), if any.
    pub fn registry_reference(&self) -> Option<String> {
        let arg = self.args.get(self.registry?)?;
        let text = arg.text();
        Some(text.strip_prefix("docker://").unwrap_or(&text).to_string())
    }

    /// Whether it runs on a podman service elsewhere.
    pub fn remote(&self) -> bool {
        self.remote
    }

    /// The program run.
    pub fn program(&self) -> Cow<'_, str> {
        self.args.first().map_or(Cow::Borrowed(""), Arg::text)
    }

    /// What a person knows it by: the program and its subcommand (`podman build`,
    /// `skopeo copy`); `full`, with every word of the subcommand (`podman manifest push`).
    pub fn name(&self, full: bool) -> String {
        let words = match full {
            true => self.kind.words(),
            false => self.kind.subcommand(),
        };
        match (self.kind, words) {
            // Run through `env`, for its settings: known by its own name.
            (CommandKind::Syft, _) => "syft".into(),
            (_, "") => self.program().into_owned(),
            (_, words) => format!("{} {words}", self.program()),
        }
    }

    pub fn arguments(&self) -> &[Arg] {
        &self.args
    }

    /// Inserts `args` before the last `from_end` arguments (which end the command: a build's
    /// context directory, a `manifest add`'s list and image).
    pub fn insert_before_last<A>(&mut self, from_end: usize, args: A)
    where
        A: IntoIterator,
        A::Item: Into<Arg>,
    {
        let at = self.args.len().saturating_sub(from_end);
        let before = self.args.len();
        self.args.splice(at..at, args.into_iter().map(Into::into));
        let added = self.args.len() - before;
        if let Some(r) = &mut self.registry
            && *r >= at
        {
            *r += added;
        }
        for r in &mut self.apart {
            if r.start >= at {
                r.start += added;
            }
            if r.end > at {
                r.end += added;
            }
        }
    }

    /// Replaces the last argument (a `manifest add`'s image) with `reference` in a registry.
    pub fn set_last_registry(&mut self, reference: impl Into<Arg>) {
        self.args.pop();
        self.registry(reference);
    }

    /// The last argument.
    pub fn last(&self) -> Option<&Arg> {
        self.args.last()
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

    /// The command with build `build`'s image read from the registry, as `image`
    /// ([`Arg::published`]).
    pub fn published(&self, build: &str, image: &Pinned) -> Self {
        Self {
            kind: self.kind,
            args: self
                .args
                .iter()
                .map(|a| a.published(build, image))
                .collect(),
            registry: self.registry,
            remote: self.remote,
            prefix: self.prefix,
            apart: self.apart.clone(),
        }
    }

    /// The command with each hole `known` knows the value of filled.
    pub fn fill(&self, known: impl Fn(&Hole) -> Option<String>) -> Self {
        Self {
            kind: self.kind,
            args: self.args.iter().map(|a| a.fill(&known)).collect(),
            registry: self.registry,
            remote: self.remote,
            prefix: self.prefix,
            apart: self.apart.clone(),
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
