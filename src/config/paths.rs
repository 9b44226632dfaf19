//! Where a build is: its context directory and Dockerfile. Literal paths are checked and the
//! Dockerfile read once, at load; templated ones (`python/{{ matrix.python }}`,
//! `Dockerfile.{{ matrix.target }}`) and a platform override's own are checked the same way
//! for each build once `matrix` has rendered them ([`resolve`]).

use super::*;

/// A build's context and Dockerfile, checked and read.
#[derive(Debug)]
pub struct BuildPaths {
    /// Relative to [`Config::root`].
    pub context: PathBuf,
    /// Relative to [`Config::root`].
    pub dockerfile: PathBuf,
    /// The Dockerfile's text, and where it is on disk.
    pub dockerfile_source: Source,
}

/// A `context` or `dockerfile` as written, with the file it is written in (its directory is
/// what the path is relative to).
#[derive(Debug, Clone)]
pub struct PathText {
    pub file: Arc<File>,
    pub text: Text,
}

impl PathText {
    /// Whether it is a template, rendered per build.
    pub fn is_template(&self) -> bool {
        self.text.get_ref().contains('{')
    }
}

/// Whose paths they are, in messages: an image's, or one platform's build of it.
#[derive(Debug, Clone, Copy)]
pub struct Whose<'a> {
    /// The image, or in `matrix` the instance.
    pub name: &'a str,
    /// Set for a platform override's own paths.
    pub platform: Option<&'a Platform>,
}

impl fmt::Display for Whose<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.platform {
            Some(p) => write!(f, "the {p} build of image `{}`", self.name),
            None => write!(f, "image `{}`", self.name),
        }
    }
}

/// The paths of an image's builds, or of one platform's.
#[derive(Debug, Clone)]
pub enum Paths {
    /// Literal: checked and read at load, shared by every build.
    Read(Arc<BuildPaths>),
    /// Some part is a template: rendered, checked and read per build (by `matrix`).
    Templated {
        context: Option<PathText>,
        dockerfile: Option<PathText>,
    },
}

impl Paths {
    /// The paths of `context` and `dockerfile` as written (either may be left to its
    /// default): read now when neither is a template.
    pub(super) fn new(
        file: &File,
        confine: &Confinement,
        key: &Spanned<String>,
        platform: Option<&Platform>,
        context: Option<&PathText>,
        dockerfile: Option<&PathText>,
    ) -> Result<Self, ConfigError> {
        if context
            .into_iter()
            .chain(dockerfile)
            .any(PathText::is_template)
        {
            return Ok(Self::Templated {
                context: context.cloned(),
                dockerfile: dockerfile.cloned(),
            });
        }
        fn value(t: Option<&PathText>) -> Option<(&PathText, &str)> {
            t.map(|t| (t, t.text.get_ref().as_str()))
        }
        let paths = resolve(
            (file, key.span()),
            confine,
            Whose {
                name: key.get_ref(),
                platform,
            },
            value(context),
            value(dockerfile),
        )?;
        Ok(Self::Read(Arc::new(paths)))
    }

    /// The templates among them, for compiling once up front.
    pub fn templates(&self) -> impl Iterator<Item = &Text> {
        let (context, dockerfile) = match self {
            Self::Read(_) => (None, None),
            Self::Templated {
                context,
                dockerfile,
            } => (context.as_ref(), dockerfile.as_ref()),
        };
        context.into_iter().chain(dockerfile).map(|t| &t.text)
    }
}

/// Checks a build's context and Dockerfile and reads the Dockerfile: `context` relative to the
/// file it is written in (default `.` of the image's own, `image` with the span of its key),
/// `dockerfile` relative to the context (default `Dockerfile`). Each is given as written and
/// with its value (the rendering, for a template); both must exist inside the repository.
/// `whose` they are is said in errors.
pub fn resolve(
    image: (&File, Range<usize>),
    confine: &Confinement,
    whose: Whose,
    context: Option<(&PathText, &str)>,
    dockerfile: Option<(&PathText, &str)>,
) -> Result<BuildPaths, ConfigError> {
    let context_file = context.map_or(image.0, |(t, _)| t.file.as_ref());
    let (source, dir) = (&context_file.source, context_file.dir.as_path());
    let context_path = normalize_relative(Path::new(context.map_or(".", |(_, v)| v)));
    let context_span = context.map_or(image.1, |(t, _)| t.text.span());
    // A rendered path is shown with the template it came from.
    let rendered = |written: Option<&PathText>| {
        written
            .filter(|t| t.is_template())
            .map_or(String::new(), |t| {
                format!(" (rendered from `{}`)", t.text.get_ref())
            })
    };
    if !dir.join(&context_path).is_dir() {
        return Err(source
            .error(
                ErrorKind::Path,
                context_span,
                format!(
                    "context directory `{}`{} of {whose} does not exist",
                    context_path.display(),
                    rendered(context.map(|(t, _)| t))
                ),
            )
            .with_help(format!(
                "paths are relative to the directory of {}",
                source.name()
            )));
    }
    confine.check_from(
        dir,
        &dir.join(&context_path),
        (source, context_span.clone()),
        format_args!("context `{}` of {whose}", context_path.display()),
    )?;
    let written = dockerfile.map_or("Dockerfile", |(_, d)| d);
    let rel = normalize_relative(&context_path.join(written));
    let dockerfile_path = dir.join(&rel);
    let (dockerfile_source, dockerfile_span) = match dockerfile {
        Some((t, _)) => (&t.file.source, t.text.span()),
        None => (source, context_span.clone()),
    };
    confine.check_from(
        dir,
        &dockerfile_path,
        (dockerfile_source, dockerfile_span.clone()),
        format_args!("Dockerfile `{}` of {whose}", rel.display()),
    )?;
    // podman reads an ignore file beside the Dockerfile or in the context, and mab reads them
    // to hash the context: they must not lead out of the repository either.
    let ignore_files = crate::dockerfile::dockerfile_ignore_file(&dockerfile_path)
        .into_iter()
        .chain(crate::dockerfile::context_ignore_file(
            &dir.join(&context_path),
        ));
    for ignore in ignore_files {
        let shown = ignore.strip_prefix(dir).unwrap_or(&ignore).display();
        confine.check_from(
            dir,
            &ignore,
            (source, context_span.clone()),
            format_args!("ignore file `{shown}` of {whose}"),
        )?;
    }
    let Ok(dockerfile_text) = std::fs::read_to_string(&dockerfile_path) else {
        let (source, span) = (dockerfile_source, dockerfile_span);
        return Err(source
            .error(
                ErrorKind::Path,
                span,
                format!(
                    "Dockerfile `{}`{} of {whose} does not exist",
                    rel.display(),
                    rendered(dockerfile.or(context).map(|(t, _)| t))
                ),
            )
            .with_help(
                "`dockerfile` is relative to the image's `context` and defaults to `Dockerfile`",
            ));
    };
    // Paths in the plan are relative to the root podman runs in.
    let from_root = |p: &Path| normalize_relative(&context_file.rel_dir.join(p));
    let dockerfile = from_root(&rel);
    Ok(BuildPaths {
        context: from_root(&context_path),
        dockerfile_source: Source::new(
            dockerfile_path,
            dockerfile.display().to_string(),
            dockerfile_text,
        ),
        dockerfile,
    })
}
