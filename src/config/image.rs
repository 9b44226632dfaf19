//! One `[images.NAME]` checked: its paths, secrets, platforms and overrides, tags and watch
//! patterns, with what it inherits.

use super::*;

/// Where an image is: the context and Dockerfile (as written, relative to its file), and the
/// Dockerfile's text.
struct Paths {
    context: PathBuf,
    dockerfile: PathBuf,
    dockerfile_text: String,
}

/// The image's context and Dockerfile, which must exist inside the repository. The Dockerfile
/// is read now, once (after that check): the planner parses it, and errors quote it.
fn paths(
    file: &File,
    confine: &Confinement,
    key: &Spanned<String>,
    raw: &RawImage,
) -> Result<Paths, ConfigError> {
    let (source, dir) = (&file.source, file.dir.as_path());
    let name = key.get_ref();
    let context = normalize_relative(Path::new(raw.context.as_ref().map_or(".", |c| c.get_ref())));
    let context_span = raw.context.as_ref().map_or(key.span(), Spanned::span);
    if !dir.join(&context).is_dir() {
        return Err(source
            .error(
                ErrorKind::Path,
                context_span,
                format!(
                    "context directory `{}` of image `{name}` does not exist",
                    context.display()
                ),
            )
            .with_help(format!(
                "paths are relative to the directory of {}",
                source.name()
            )));
    }
    confine.check_from(
        dir,
        &dir.join(&context),
        (source, context_span.clone()),
        format_args!("context `{}` of image `{name}`", context.display()),
    )?;
    let written = raw
        .dockerfile
        .as_ref()
        .map_or("Dockerfile", |d| d.get_ref());
    let dockerfile = normalize_relative(&context.join(written));
    let span = raw
        .dockerfile
        .as_ref()
        .map_or(context_span.clone(), Spanned::span);
    let dockerfile_path = dir.join(&dockerfile);
    confine.check_from(
        dir,
        &dockerfile_path,
        (source, span.clone()),
        format_args!("Dockerfile `{}` of image `{name}`", dockerfile.display()),
    )?;
    // podman reads an ignore file beside the Dockerfile or in the context, and mab reads them
    // to hash the context: they must not lead out of the repository either.
    let ignore_files = crate::dockerfile::dockerfile_ignore_file(&dockerfile_path)
        .into_iter()
        .chain(crate::dockerfile::context_ignore_file(&dir.join(&context)));
    for ignore in ignore_files {
        let shown = ignore.strip_prefix(dir).unwrap_or(&ignore).display();
        confine.check_from(
            dir,
            &ignore,
            (source, context_span.clone()),
            format_args!("ignore file `{shown}` of image `{name}`"),
        )?;
    }
    let Ok(dockerfile_text) = std::fs::read_to_string(dockerfile_path) else {
        return Err(source
            .error(
                ErrorKind::Path,
                span,
                format!(
                    "Dockerfile `{}` of image `{name}` does not exist",
                    dockerfile.display()
                ),
            )
            .with_help(
                "`dockerfile` is relative to the image's `context` and defaults to `Dockerfile`",
            ));
    };
    Ok(Paths {
        context,
        dockerfile,
        dockerfile_text,
    })
}

/// The image's secrets: the inherited ones, then its own, each read where it is written.
fn secrets(
    file: &File,
    inh: &Inherited,
    confine: &Confinement,
    key: &str,
    image_span: Range<usize>,
    raw: &RawImage,
) -> Result<BTreeMap<String, SecretSource>, ConfigError> {
    let (source, dir) = (&file.source, file.dir.as_path());
    let inherited = inh
        .secrets
        .iter()
        .map(|(id, (s, src, d))| (id, s, src, d.as_path()));
    let own = raw.secrets.iter().map(|(id, s)| (id, s, source, dir));
    let mut secrets = BTreeMap::new();
    for (id, secret, secret_file, secret_dir) in inherited.chain(own) {
        let at = (secret_file, secret_dir);
        let resolved = secret_source(at, (source, image_span.clone()), key, id, secret)?;
        if let (SecretSource::File(path), Some(written)) = (&resolved, &secret.file) {
            confine.check_from(
                secret_dir,
                path,
                (secret_file, written.span()),
                format_args!(
                    "file `{}` of secret `{id}` of image `{key}`",
                    written.get_ref()
                ),
            )?;
        }
        secrets.insert(id.clone(), resolved);
    }
    Ok(secrets)
}

/// The image's platforms, and where they are written (its own list, or the inherited one).
fn platforms(
    source: &Source,
    inh: &Inherited,
    key: &Spanned<String>,
    image_span: Range<usize>,
    raw: &RawImage,
) -> Result<(Vec<Platform>, Source, Range<usize>), ConfigError> {
    let found = match (&raw.platforms, &inh.platforms) {
        (Some(list), _) => {
            let parsed = parse_platforms(source, list.get_ref())?;
            let span = list_span(list.get_ref()).unwrap_or_else(|| list.span());
            let platforms = parsed.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
            (platforms, source.clone(), span)
        }
        (None, Some(inherited)) => (
            inherited.platforms.clone(),
            inherited.source.clone(),
            inherited.span.clone(),
        ),
        (None, None) => {
            return Err(source
                .error(
                    ErrorKind::Type,
                    image_span,
                    format!("image `{}` has no platforms", key.get_ref()),
                )
                .with_help(PLATFORMS_HELP));
        }
    };
    let (platforms, written_in, span) = &found;
    if platforms.is_empty() {
        // An image of no platform would build nothing, push nothing, and succeed.
        let mut error = written_in.error(
            ErrorKind::Type,
            span.clone(),
            format!(
                "image `{}` has no platforms: `platforms = []`",
                key.get_ref()
            ),
        );
        if raw.platforms.is_none() {
            error = error.at(source, key.span(), Some("the image inherits it"));
        }
        return Err(error.with_help(
            "list at least one platform, e.g. platforms = [\"linux/amd64\"]: an image of none builds and pushes nothing",
        ));
    }
    Ok(found)
}

const PLATFORMS_HELP: &str = "set `platforms` in [defaults] or in the image, e.g. platforms = [\"linux/amd64\", \"linux/arm64\"]";

/// `[images.NAME.platform."os/arch"]`, each for a platform the image builds.
fn overrides(
    source: &Source,
    key: &str,
    platforms: &[Platform],
    raw: BTreeMap<Spanned<String>, RawPlatformOverride>,
) -> Result<BTreeMap<Platform, PlatformOverride>, ConfigError> {
    let mut overrides = BTreeMap::new();
    for (platform_key, o) in raw {
        let platform = parse_platform(source, &platform_key)?;
        if !platforms.contains(&platform) {
            return Err(source
                .error(
                    ErrorKind::Platform,
                    platform_key.span(),
                    format!(
                        "image `{key}` has overrides for `{platform}`, which it does not build"
                    ),
                )
                .with_help(format!("it builds: {}", join(platforms))));
        }
        let args = sourced_map(&o.args, source);
        check_no_secret_args(key, &args)?;
        overrides.insert(
            platform,
            PlatformOverride {
                args,
                target: o.target,
                contexts: sourced_map(&o.contexts, source),
            },
        );
    }
    Ok(overrides)
}

pub(super) fn resolve_image(
    file: &Arc<File>,
    inh: &Inherited,
    confine: &Confinement,
    key: Spanned<String>,
    image: Spanned<RawImage>,
) -> Result<ImageDef, ConfigError> {
    let (source, dir) = (&file.source, file.dir.as_path());
    let image_span = image.span();
    let raw = image.into_inner();
    let paths = paths(file, confine, &key, &raw)?;
    let secrets = secrets(file, inh, confine, key.get_ref(), image_span.clone(), &raw)?;
    let mut args = inh.args.clone();
    args.extend(sourced_map(&raw.args, source));
    check_no_secret_args(key.get_ref(), &args)?;
    let (platforms, platforms_source, platforms_span) =
        platforms(source, inh, &key, image_span.clone(), &raw)?;
    let tags = match (&raw.tags, &inh.tags) {
        (Some(own), _) => own.iter().map(|t| Sourced::new(t, source)).collect(),
        (None, Some(inherited)) => inherited.clone(),
        (None, None) => {
            return Err(source
                .error(ErrorKind::Type, image_span, format!("image `{}` has no tags", key.get_ref()))
                .with_help("set `tags` in [defaults] or in the image, e.g. tags = [\"{{ git.short_sha }}\", \"latest\"]"));
        }
    };
    let watch = raw
        .watch
        .iter()
        .map(|w| {
            let pattern = watch_pattern(source, dir, key.get_ref(), w)?;
            confine.check_from(
                dir,
                &watched_dir(dir, w.get_ref()),
                (source, w.span()),
                format_args!(
                    "`watch` pattern `{}` of image `{}`",
                    w.get_ref(),
                    key.get_ref()
                ),
            )?;
            Ok(pattern)
        })
        .collect::<Result<_, ConfigError>>()?;
    let merge = |own: &TextMap, inherited: &SourcedMap| {
        let mut merged = inherited.clone();
        merged.extend(sourced_map(own, source));
        merged
    };
    let key_span = key.span();
    let key = key.into_inner();
    // Paths in the plan are relative to the root podman runs in.
    let from_root = |p: &Path| normalize_relative(&file.rel_dir.join(p));
    let dockerfile = from_root(&paths.dockerfile);
    Ok(ImageDef {
        file: file.clone(),
        key_span: key_span.clone(),
        context: from_root(&paths.context),
        dockerfile_source: Source::new(
            dir.join(&paths.dockerfile),
            dockerfile.display().to_string(),
            paths.dockerfile_text,
        ),
        dockerfile,
        repository: raw.repository,
        name: raw.name,
        depends_on: raw.depends_on,
        secrets,
        args,
        labels: merge(&raw.labels, &inh.labels),
        annotations: merge(&raw.annotations, &inh.annotations),
        target: raw.target,
        contexts: merge(&raw.contexts, &inh.contexts),
        overrides: overrides(source, &key, &platforms, raw.platform)?,
        platforms,
        platforms_source,
        platforms_span,
        tags,
        push: raw.push.or(inh.push).unwrap_or(true),
        cache: match &raw.cache {
            Some(c) => Cache::parse(c, source)?,
            None => inh.cache.clone().flatten(),
        },
        matrix_span: raw.matrix.as_ref().map_or(key_span, Spanned::span),
        matrix: raw.matrix.map(Spanned::into_inner).unwrap_or_default(),
        exclude: raw.exclude,
        include: raw.include,
        watch,
        key,
    })
}

/// A `watch` entry as an absolute pattern: relative to the file's directory, and a directory
/// stands for everything below it.
pub(super) fn watch_pattern(
    source: &Source,
    dir: &Path,
    key: &str,
    written: &Text,
) -> Result<glob::Pattern, ConfigError> {
    let text = written.get_ref();
    let rel = normalize_relative(Path::new(text.trim_end_matches('/')));
    // The directory part is a path, not a pattern: `[` or `*` in it must match themselves.
    let ups = rel
        .components()
        .take_while(|c| matches!(c, Component::ParentDir))
        .count();
    let base = dir.ancestors().nth(ups).unwrap_or(Path::new("/"));
    let rest: PathBuf = rel
        .components()
        .skip(ups)
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let base = glob::Pattern::escape(&base.to_string_lossy());
    let pattern = if rel.is_absolute() {
        rel.to_string_lossy().into_owned()
    } else if rest.as_os_str().is_empty() {
        base
    } else {
        format!("{}/{}", base.trim_end_matches('/'), rest.display())
    };
    glob::Pattern::new(&pattern).map_err(|e| {
        source
            .error(
                ErrorKind::Path,
                written.span(),
                format!("`watch` pattern `{text}` of image `{key}` is not a valid glob: {e}"),
            )
            .with_help("write paths relative to this file, e.g. watch = [\"../../libs/common\", \"../proto/**/*.proto\"]")
    })
}

/// The directory a `watch` entry written in `dir` looks in: its part before the first wildcard.
fn watched_dir(dir: &Path, written: &str) -> PathBuf {
    let literal: PathBuf = Path::new(written)
        .components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect();
    dir.join(literal)
}

impl ImageDef {
    /// Every template of the image, for compiling them once up front.
    pub fn templates(&self) -> impl Iterator<Item = &Text> {
        let maps = [&self.args, &self.labels, &self.annotations]
            .into_iter()
            .flat_map(|m| m.values());
        let maps = maps.chain(self.contexts.values());
        let overrides = self
            .overrides
            .values()
            .flat_map(|o| o.args.values().chain(o.contexts.values()));
        let sourced = self.tags.iter().chain(maps).chain(overrides);
        let targets = self.overrides.values().filter_map(|o| o.target.as_ref());
        self.name
            .iter()
            .chain(&self.repository)
            .chain(&self.target)
            .chain(targets)
            .chain(sourced.map(|s| &s.text))
    }
}

/// Where secret `id` comes from. `at` is the file it is written in; `image` is the image's own
/// file and table, for an entry that says neither where nor what.
pub(super) fn secret_source(
    (source, dir): (&Source, &Path),
    image: (&Source, Range<usize>),
    key: &str,
    id: &str,
    s: &RawSecret,
) -> Result<SecretSource, ConfigError> {
    match (&s.file, &s.env) {
        (Some(file), None) => {
            let written = file.get_ref();
            let path = written_path(dir, written);
            if !path.is_file() {
                return Err(source.error(
                    ErrorKind::Path,
                    file.span(),
                    format!("secret `{id}` of image `{key}`: no file `{written}`"),
                ));
            }
            Ok(SecretSource::File(path))
        }
        (None, Some(env)) => Ok(SecretSource::Env(env.get_ref().clone())),
        (file, env) => {
            let message =
                format!("secret `{id}` of image `{key}` needs exactly one of `file` and `env`");
            let err = match file.as_ref().or(env.as_ref()) {
                Some(t) => source.error(ErrorKind::Type, t.span(), message),
                None => image.0.error(ErrorKind::Type, image.1, message),
            };
            Err(err.with_help("e.g. secrets = { npmrc = { file = \"~/.npmrc\" }, token = { env = \"GH_TOKEN\" } }"))
        }
    }
}

/// Build args end up in the image's history for anyone to read: a value that looks like a
/// credential must travel as a secret instead.
pub(super) fn check_no_secret_args(key: &str, args: &SourcedMap) -> Result<(), ConfigError> {
    const MARKERS: [&str; 8] = [
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "API_KEY",
        "APIKEY",
        "PRIVATE_KEY",
        "CREDENTIAL",
    ];
    for (name, value) in args {
        let upper = name.to_ascii_uppercase();
        if MARKERS.iter().any(|m| upper.contains(m)) {
            return Err(value.source
                .error(ErrorKind::Secret, value.text.span(), format!("build arg `{name}` of image `{key}` looks like a secret; build args are stored in the image's history"))
                .with_help(pass_as_secret(name)));
        }
    }
    Ok(())
}

/// How a credential in environment variable `name` reaches a build: the help of every error
/// that refuses one elsewhere.
pub(crate) fn pass_as_secret(name: &str) -> String {
    format!(
        "pass it as a secret: secrets = {{ {id} = {{ env = \"{name}\" }} }}, and in the Dockerfile `RUN --mount=type=secret,id={id} ...` (the value is in /run/secrets/{id})",
        id = name.to_ascii_lowercase()
    )
}

pub(super) fn list_span(list: &[Text]) -> Option<Range<usize>> {
    Some(list.first()?.span().start..list.last()?.span().end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(dir: &str, written: &str) -> glob::Pattern {
        let source = Source::new("m.toml".into(), "m.toml".into(), String::new());
        watch_pattern(
            &source,
            Path::new(dir),
            "api",
            &Spanned::new(0..0, written.into()),
        )
        .unwrap()
    }

    #[test]
    fn watch_patterns_are_relative_to_the_file_and_its_directory_is_literal() {
        let dir = "/w/x[1]/svc";
        assert!(watch(dir, "proto").matches_path(Path::new("/w/x[1]/svc/proto")));
        assert!(!watch(dir, "proto").matches_path(Path::new("/w/x1/svc/proto")));
        assert!(watch(dir, "../../libs/**/*.rs").matches_path(Path::new("/w/libs/a/b.rs")));
        assert!(watch(dir, "..").matches_path(Path::new("/w/x[1]")));
        assert!(watch(dir, "./gen/").matches_path(Path::new("/w/x[1]/svc/gen")));
        assert!(watch(dir, "/etc/mab").matches_path(Path::new("/etc/mab")));
    }
}
