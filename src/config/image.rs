//! One `[images.NAME]` checked: its paths, secrets, platforms and overrides, tags and watch
//! patterns, with what it inherits.

use super::inherit::{Layer, last, merged, overrides};
use super::*;

/// The image's secrets: the inherited ones, then those of each layer, each read where it is
/// written.
fn secrets(
    file: &File,
    inh: &Inherited,
    confine: &Confinement,
    key: &str,
    image_span: Range<usize>,
    layers: &[Layer],
) -> Result<BTreeMap<String, SecretSource>, ConfigError> {
    let source = &file.source;
    let inherited = inh
        .secrets
        .iter()
        .map(|(id, (s, src, d))| (id, s, src, d.as_path()));
    let own = layers.iter().flat_map(|l| {
        l.raw
            .secrets
            .iter()
            .map(|(id, s)| (id, s, &l.file.source, l.file.dir.as_path()))
    });
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

/// The image's platforms, and where they are written (the last layer's list, or the
/// inherited one). None is an error: an image of no platform would build and push nothing.
fn platforms(
    source: &Source,
    inh: &Inherited,
    key: &Spanned<String>,
    image_span: Range<usize>,
    layers: &[Layer],
) -> Result<(Vec<Platform>, Source, Range<usize>), ConfigError> {
    let own = last(layers, |r| r.platforms.as_ref());
    let found = match (own, &inh.platforms) {
        (Some((layer, list)), _) => {
            let source = &layer.file.source;
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
        if own.is_none() {
            error = error.at(source, key.span(), Some("the image inherits it"));
        }
        return Err(error.with_help(
            "list at least one platform, e.g. platforms = [\"linux/amd64\"]: an image of none builds and pushes nothing",
        ));
    }
    Ok(found)
}

const PLATFORMS_HELP: &str = "set `platforms` in [defaults] or in the image, e.g. platforms = [\"linux/amd64\", \"linux/arm64\"]";

/// The image `key` of `file`, from its layers: the tables it inherits from, then its own
/// (the last), over its file's defaults.
pub(super) fn resolve_image(
    file: &Arc<File>,
    inh: &Inherited,
    confine: &Confinement,
    key: &Spanned<String>,
    image_span: Range<usize>,
    layers: &[Layer],
) -> Result<ImageDef, ConfigError> {
    let source = &file.source;
    let own = layers
        .last()
        .expect("an image's own table is its last layer")
        .raw;
    let path = |(l, t): (Layer, &Text)| PathText {
        file: l.file.clone(),
        text: t.clone(),
    };
    let context = last(layers, |r| r.context.as_ref()).map(path);
    let dockerfile = last(layers, |r| r.dockerfile.as_ref()).map(path);
    let paths = Paths::new(
        file,
        confine,
        key,
        None,
        context.as_ref(),
        dockerfile.as_ref(),
    )?;
    let secrets = secrets(
        file,
        inh,
        confine,
        key.get_ref(),
        image_span.clone(),
        layers,
    )?;
    let args = merged(&inh.args, layers, |r| &r.args);
    check_no_secret_args(key.get_ref(), &args)?;
    let (platforms, platforms_source, platforms_span) =
        platforms(source, inh, key, image_span.clone(), layers)?;
    let tags = match (last(layers, |r| r.tags.as_ref()), &inh.tags) {
        (Some((l, own)), _) => own
            .iter()
            .map(|t| Sourced::new(t, &l.file.source))
            .collect(),
        (None, Some(inherited)) => inherited.clone(),
        (None, None) => {
            return Err(source
                .error(ErrorKind::Type, image_span, format!("image `{}` has no tags", key.get_ref()))
                .with_help("set `tags` in [defaults] or in the image, e.g. tags = [\"{{ git.short_sha }}\", \"latest\"]"));
        }
    };
    // A list: the last layer's replaces the others'.
    let repository = match last(layers, |r| r.repository.as_ref()) {
        Some((l, written)) => {
            let list = l.raw.repositories().unwrap_or_default();
            if list.is_empty() {
                return Err(l
                    .file
                    .source
                    .error(
                        ErrorKind::Type,
                        written.span(),
                        format!("image `{}` lists no repository", key.get_ref()),
                    )
                    .with_help("name one repository or more, or leave `repository` out for `<registry>/<name>`"));
            }
            list.iter()
                .map(|t| Sourced::new(t, &l.file.source))
                .collect()
        }
        None => Vec::new(),
    };
    let watch = match last(layers, |r| (!r.watch.is_empty()).then_some(&r.watch)) {
        Some((l, list)) => list
            .iter()
            .map(|w| {
                let (source, dir) = (&l.file.source, l.file.dir.as_path());
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
            .collect::<Result<_, ConfigError>>()?,
        None => Vec::new(),
    };
    let sourced = |(l, t): (Layer, &Text)| Sourced::new(t, &l.file.source);
    let inherited_files = layers
        .iter()
        .filter(|l| !Arc::ptr_eq(l.file, file))
        .filter_map(|l| l.file.chain.first().cloned())
        .collect();
    Ok(ImageDef {
        file: file.clone(),
        key_span: key.span(),
        paths,
        repository,
        name: own.name.clone(),
        depends_on: own.depends_on.clone(),
        secrets,
        args,
        labels: merged(&inh.labels, layers, |r| &r.labels),
        annotations: merged(&inh.annotations, layers, |r| &r.annotations),
        target: last(layers, |r| r.target.as_ref()).map(sourced),
        contexts: merged(&inh.contexts, layers, |r| &r.contexts),
        overrides: platform_paths(
            file,
            confine,
            key,
            (context.as_ref(), dockerfile.as_ref()),
            overrides(key.get_ref(), &platforms, layers)?,
        )?,
        platforms,
        platforms_source,
        platforms_span,
        tags,
        push: last(layers, |r| r.push.as_ref())
            .map(|(_, p)| *p)
            .or(inh.push)
            .unwrap_or(true),
        cache: match last(layers, |r| r.cache.as_ref()) {
            Some((l, c)) => Cache::parse(c, &l.file.source)?,
            None => inh.cache.clone().flatten(),
        },
        matrix_span: own.matrix.as_ref().map_or(key.span(), Spanned::span),
        matrix: own
            .matrix
            .as_ref()
            .map(|m| m.get_ref().clone())
            .unwrap_or_default(),
        exclude: own.exclude.clone(),
        include: own.include.clone(),
        watch,
        inherited_files,
        key: key.get_ref().clone(),
    })
}

/// Each platform override that sets `context` or `dockerfile` with its paths: the one it sets
/// and the image's other one (`image`, as written).
fn platform_paths(
    file: &File,
    confine: &Confinement,
    key: &Spanned<String>,
    image: (Option<&PathText>, Option<&PathText>),
    mut overrides: BTreeMap<Platform, PlatformOverride>,
) -> Result<BTreeMap<Platform, PlatformOverride>, ConfigError> {
    for (platform, o) in overrides.iter_mut() {
        if o.context.is_none() && o.dockerfile.is_none() {
            continue;
        }
        let context = o.context.as_ref().or(image.0);
        let dockerfile = o.dockerfile.as_ref().or(image.1);
        let paths = Paths::new(file, confine, key, Some(platform), context, dockerfile)?;
        o.paths = Some(paths);
    }
    Ok(overrides)
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
            .flat_map(|o| [&o.args, &o.contexts, &o.labels, &o.annotations])
            .flat_map(|m| m.values());
        let sourced = self.tags.iter().chain(maps).chain(overrides);
        let targets = self.overrides.values().filter_map(|o| o.target.as_ref());
        let targets = targets.chain(self.overrides.values().flat_map(|o| &o.tags));
        let sourced = sourced
            .chain(&self.repository)
            .chain(&self.target)
            .chain(targets);
        let paths = std::iter::once(&self.paths)
            .chain(self.overrides.values().filter_map(|o| o.paths.as_ref()))
            .flat_map(Paths::templates);
        self.name
            .iter()
            .chain(sourced.map(|s| &s.text))
            .chain(paths)
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
