//! The error type of the library boundary, [`Error`], with the one table of exit codes. Every
//! mistake in a config is a [`ConfigError`]: a kind (for callers and tests), a message, and where
//! it is (a span in the file that holds it), rendered by the CLI as a rustc-style snippet.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};

/// Why a mab command did not succeed. Each variant has its exit code ([`EXIT_CODES`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad config or command line: nothing was built or pushed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// This machine cannot run the plan (no podman, a missing emulator, ...); the checks that
    /// failed were printed.
    #[error("{0}")]
    Environment(String),
    /// A build, push or verification failed; the summary says which.
    #[error("{0}")]
    Failed(String),
    /// Stopped by a signal (2: SIGINT, 15: SIGTERM).
    #[error("interrupted by signal {0}")]
    Interrupted(i32),
    /// mab could not do its own part (write its state, its report, its output).
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Every exit code mab uses, and what it means: the one table (docs/commands.md prints it).
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        0,
        "success: everything planned was built, pushed and verified (or printed)",
    ),
    (1, "a build, push or verification failed"),
    (
        2,
        "a bad config or command line: nothing was built or pushed",
    ),
    (
        3,
        "this machine cannot run the plan (podman missing, no emulator for a platform that needs one; what `mab doctor` fails): nothing was built",
    ),
    (
        4,
        "mab could not do its own part: writing its state directory, report or output",
    ),
    (
        130,
        "interrupted by SIGINT (Ctrl-C): running commands were stopped",
    ),
    (143, "interrupted by SIGTERM: running commands were stopped"),
];

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => 2,
            Self::Environment(_) => 3,
            Self::Failed(_) => 1,
            Self::Interrupted(signal) => 128 + *signal as u8,
            Self::Other(_) => 4,
        }
    }
}

/// What class of mistake an error is. Stable: the CLI prints it as the error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The config file could not be found or read.
    Io,
    /// Malformed TOML.
    Syntax,
    /// A key that mab does not know.
    UnknownKey,
    /// A value of the wrong type, or a missing required key.
    Type,
    /// A platform string that is not a platform.
    Platform,
    /// A repository, tag or instance name outside the reference grammar.
    Reference,
    /// A template that does not parse or uses an undefined variable.
    Template,
    /// A context directory or Dockerfile that does not exist.
    Path,
    /// A path the config names that leads outside the repository, not allowed by `--allow`.
    Outside,
    /// `depends_on` names an image that is not in the config.
    UnknownDependency,
    /// Images that depend on each other in a circle.
    Cycle,
    /// A dependent image wants a platform its dependency is not built for.
    PlatformMismatch,
    /// Two instances or tags that resolve to the same name.
    Duplicate,
    /// A matrix, `include` or `exclude` that cannot be expanded.
    Matrix,
    /// Command-line selection that matches nothing, or a bad `--var`.
    Selection,
    /// A credential where it would leak (a build arg, a template's `env()`).
    Secret,
    /// A Dockerfile that does not parse, or whose reached instructions do not expand.
    Dockerfile,
    /// `target` names no stage of the Dockerfile.
    Target,
    /// The state directory `.mab` is not mab's own: tracked by git, a link, another user's.
    State,
    /// A setting only the machine may make (which program mab runs, with which options),
    /// written in a repository's config.
    MachineSetting,
}

impl ErrorKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Io => "mab::io",
            Self::Syntax => "mab::syntax",
            Self::UnknownKey => "mab::unknown-key",
            Self::Type => "mab::type",
            Self::Platform => "mab::platform",
            Self::Reference => "mab::reference",
            Self::Template => "mab::template",
            Self::Path => "mab::path",
            Self::Outside => "mab::outside-repository",
            Self::UnknownDependency => "mab::unknown-dependency",
            Self::Cycle => "mab::cycle",
            Self::PlatformMismatch => "mab::platform-mismatch",
            Self::Duplicate => "mab::duplicate",
            Self::Matrix => "mab::matrix",
            Self::Selection => "mab::selection",
            Self::Secret => "mab::secret",
            Self::Dockerfile => "mab::dockerfile",
            Self::Target => "mab::target",
            Self::State => "mab::state",
            Self::MachineSetting => "mab::machine-setting",
        }
    }
}

/// A file mab read, kept whole so errors can quote it. Cheap to clone: every template of a
/// workspace carries the file it is written in.
#[derive(Debug, Clone)]
pub struct Source(Arc<SourceInner>);

#[derive(Debug)]
struct SourceInner {
    path: PathBuf,
    name: String,
    text: Arc<str>,
}

impl Source {
    /// `name` is how the file is shown in messages (relative to the working directory).
    pub fn new(path: PathBuf, name: String, text: String) -> Self {
        Self(Arc::new(SourceInner {
            path,
            name,
            text: text.into(),
        }))
    }

    pub fn read(path: &Path, name: String) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(ErrorKind::Io, format!("cannot read {name}: {e}")))?;
        Ok(Self::new(path.to_path_buf(), name, text))
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn text(&self) -> &str {
        &self.0.text
    }

    /// An error pointing at `span` of this file.
    pub fn error(
        &self,
        kind: ErrorKind,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(kind, message).at(self, span, None::<String>)
    }

    /// 1-based line and column of a byte offset, for messages that name a place in words.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.0.text[..offset.min(self.0.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, col)
    }
}

/// Where in which file an error is: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

/// A mistake in the configuration (or the files it names). Nothing has been built or pushed
/// when one is returned.
#[derive(Debug)]
pub struct ConfigError(Box<Inner>);

// Boxed: errors travel through every `Result` of the pipeline and should cost a pointer there.
#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
    related: Vec<ConfigError>,
    location: Option<String>,
    /// The file of the first place it points at, with its line and column (for CI annotations).
    place: Option<Place>,
    /// A related place in another file, shown as advice under the main error.
    is_note: bool,
    /// Where the quoted source was cut short, if it was (see [`Cut`]).
    cut: Option<Cut>,
}

/// A line too long to quote whole (a hostile Dockerfile's 120 kB line), quoted up to `at`,
/// where ` …` stands for the rest of it, up to `end`. The part before `at` is kept as is, so
/// the line and column that miette shows stay right.
#[derive(Debug, Clone, Copy)]
struct Cut {
    at: usize,
    end: usize,
}

impl Cut {
    /// A quoted line longer than this is cut.
    const LONG: usize = 1000;
    /// What stands for the part left out.
    const MARK: &'static str = " …";

    /// The cut of the line that holds `span`, if that line is long.
    fn of(text: &str, span: &Range<usize>) -> Option<Self> {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        if end - line_start <= Self::LONG {
            return None;
        }
        // Enough of the line to see the place and what follows it.
        let mut at = (start + 200).max(line_start + 400).min(end);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        Some(Self { at, end })
    }

    fn text(&self, text: &str) -> Arc<str> {
        format!("{}{}{}", &text[..self.at], Self::MARK, &text[self.end..]).into()
    }

    /// `span` of the whole text, in the cut one.
    fn span(&self, span: Range<usize>) -> Range<usize> {
        let map = |o: usize| match o {
            o if o <= self.at => o,
            o if o <= self.end => self.at,
            o => o - self.end + self.at + Self::MARK.len(),
        };
        map(span.start)..map(span.end)
    }
}

impl ConfigError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            source: None,
            labels: Vec::new(),
            help: None,
            related: Vec::new(),
            location: None,
            place: None,
            is_note: false,
            cut: None,
        }))
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// `file:line:col` of the first place the error points at.
    pub fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }

    /// The file, line and column of the first place the error points at.
    pub fn place(&self) -> Option<&Place> {
        self.0.place.as_ref()
    }

    /// Points the error at `span` of `source`; a second call with the same file adds a label.
    pub fn at(
        mut self,
        source: &Source,
        span: Range<usize>,
        label: Option<impl Into<String>>,
    ) -> Self {
        let src_name = source.name();
        if self.0.source.as_ref().is_some_and(|s| s.name() != src_name) {
            // Another file: show it as a related note so both places are visible.
            let mut note = ConfigError::new(self.0.kind, format!("see {src_name}"));
            note.0.is_note = true;
            note = note.at(source, span, label);
            self.0.related.push(note);
            return self;
        }
        if self.0.source.is_none() {
            let (line, column) = source.line_col(span.start);
            self.0.location = Some(format!("{src_name}:{line}:{column}"));
            self.0.place = Some(Place {
                path: source.path().to_path_buf(),
                line,
                column,
            });
            self.0.cut = Cut::of(&source.0.text, &span);
            let text = match &self.0.cut {
                Some(cut) => cut.text(&source.0.text),
                None => source.0.text.clone(),
            };
            self.0.source = Some(NamedSource::new(src_name, text).with_language("toml"));
        }
        let span = match &self.0.cut {
            Some(cut) => cut.span(span),
            None => span,
        };
        self.0
            .labels
            .push(LabeledSpan::new_with_span(label.map(Into::into), span));
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    pub fn with_help_opt(self, help: Option<String>) -> Self {
        match help {
            Some(h) => self.with_help(h),
            None => self,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for ConfigError {}

impl Diagnostic for ConfigError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.0.is_note).then(|| Box::new(self.0.kind.code()) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        self.0.is_note.then_some(miette::Severity::Advice)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.0.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.0.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.0.labels.iter().cloned()))
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.0.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.0.related.iter().map(|r| r as &dyn Diagnostic),
            ))
        }
    }
}

/// The closest of `known` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(word, k), k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// `a, b, c`: a list in a message.
pub fn join<T: fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `did you mean `x`?` as a help line, or nothing.
pub fn suggest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    did_you_mean(word, known).map(|k| format!("did you mean `{k}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("contxt", ["context", "dockerfile", "tags"]),
            Some("context")
        );
        assert_eq!(did_you_mean("zzz", ["context", "dockerfile"]), None);
    }

    #[test]
    fn a_long_line_is_quoted_cut_short_at_the_same_column() {
        let text = format!("FROM scratch\nARG A={}\nRUN x\n", "y".repeat(100_000));
        let source = Source::new("Dockerfile".into(), "Dockerfile".into(), text.clone());
        let at = text.find("A=").unwrap();
        let later = text.find("RUN").unwrap();
        let e = source
            .error(ErrorKind::Dockerfile, at..at + 2, "too deep")
            .at(&source, later..later + 3, Some("and here"));
        assert_eq!(e.location(), Some("Dockerfile:2:5"));
        let shown = e.0.source.as_ref().unwrap().inner().to_string();
        assert!(shown.len() < 1_000, "{} bytes quoted", shown.len());
        assert!(shown.starts_with("FROM scratch\nARG A=yyy"));
        assert!(shown.ends_with(" …\nRUN x\n"));
        // Each label still points at its own words in what is quoted.
        let spans: Vec<_> =
            e.0.labels
                .iter()
                .map(|l| l.offset()..l.offset() + l.len())
                .collect();
        assert_eq!(&shown[spans[0].clone()], "A=");
        assert_eq!(&shown[spans[1].clone()], "RUN");
    }

    #[test]
    fn line_and_column() {
        let s = Source::new("x".into(), "x".into(), "ab\ncd\n".into());
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(4), (2, 2));
    }
}
