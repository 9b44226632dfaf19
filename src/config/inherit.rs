//! `inherits = ["NAME", ...]`: an image takes the keys of the images it names, as targets do in
//! `docker buildx bake` (binfmt's and compose's `buildkit` → `mainline` → `_common` chains).
//! Here the chains are found and checked; [`super::image`] applies their tables in order.

use std::collections::HashMap;

use super::*;
use crate::external::ExternalRef;

/// One `[images.NAME]` table as read, with the file it is written in.
pub(super) struct Entry<'a> {
    pub file: &'a Arc<File>,
    pub key: &'a Spanned<String>,
    pub raw: &'a RawImage,
}

/// A table whose keys an image takes, with the file it is written in (its paths are relative
/// to that file, its errors point into it).
#[derive(Clone, Copy)]
pub(super) struct Layer<'a> {
    pub file: &'a Arc<File>,
    pub raw: &'a RawImage,
}

/// For each entry, the entries whose tables it takes, in the order they apply: those it
/// inherits from, each after its own ancestors, in the order `inherits` lists them, and
/// itself last. An image reached twice (a diamond) applies twice, as bake applies each
/// inherited target whole.
pub(super) fn chains(entries: &[Entry]) -> Result<Vec<Vec<usize>>, ConfigError> {
    if entries.iter().all(|e| e.raw.inherits.is_empty()) {
        return Ok((0..entries.len()).map(|i| vec![i]).collect());
    }
    let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = by_key.insert(e.key.get_ref(), i) {
            // Checked here too, not only once images are resolved: abstract images never are.
            let (a, b) = (&entries[first], e);
            return Err(defined_twice(
                e.key.get_ref(),
                (&a.file.source, a.key.span()),
                (&b.file.source, b.key.span()),
            ));
        }
    }
    let mut memo = vec![None; entries.len()];
    (0..entries.len())
        .map(|i| chain(entries, &by_key, &mut memo, &mut Vec::new(), i))
        .collect()
}

/// Image `key` is defined at `a` and at `b`.
pub(super) fn defined_twice(
    key: &str,
    a: (&Source, Range<usize>),
    b: (&Source, Range<usize>),
) -> ConfigError {
    ConfigError::new(
        ErrorKind::Duplicate,
        format!(
            "image `{key}` is defined in both {} and {}",
            a.0.name(),
            b.0.name()
        ),
    )
    .at(a.0, a.1, Some("defined here"))
    .at(b.0, b.1, Some("and here"))
    .with_help("image names are unique across the repository: rename one of them")
}

fn chain(
    entries: &[Entry],
    by_key: &HashMap<&str, usize>,
    memo: &mut Vec<Option<Vec<usize>>>,
    stack: &mut Vec<usize>,
    i: usize,
) -> Result<Vec<usize>, ConfigError> {
    if let Some(done) = &memo[i] {
        return Ok(done.clone());
    }
    stack.push(i);
    let mut out = Vec::new();
    for written in &entries[i].raw.inherits {
        let j = resolve(entries, by_key, i, written)?;
        if let Some(at) = stack.iter().position(|&s| s == j) {
            let path: Vec<&str> = stack[at..]
                .iter()
                .chain([&j])
                .map(|&s| entries[s].key.get_ref().as_str())
                .collect();
            return Err(entries[i]
                .file
                .source
                .error(
                    ErrorKind::Cycle,
                    written.span(),
                    format!("`inherits` cycle: {}", path.join(" -> ")),
                )
                .with_help("an image cannot inherit from itself, directly or through others: remove one of these `inherits` entries"));
        }
        out.extend(chain(entries, by_key, memo, stack, j)?);
    }
    stack.pop();
    out.push(i);
    memo[i] = Some(out.clone());
    Ok(out)
}

/// The entry an `inherits` name of entry `from` names: a name, or one qualified by its file's
/// directory (`libs/base:_common`), as in `depends_on`.
fn resolve(
    entries: &[Entry],
    by_key: &HashMap<&str, usize>,
    from: usize,
    written: &Text,
) -> Result<usize, ConfigError> {
    let entry = &entries[from];
    let (dir, wanted) = match written.get_ref().rsplit_once(':') {
        Some((dir, name)) => (Some(Path::new(dir)), name),
        None => (None, written.get_ref().as_str()),
    };
    let found = by_key.get(wanted).copied();
    if let Some(j) = found.filter(|&j| dir.is_none_or(|d| entries[j].file.rel_dir == d)) {
        return Ok(j);
    }
    let help = match found {
        Some(j) => format!(
            "`{wanted}` is defined in {}: write `{}`, or just `{wanted}`",
            entries[j].file.source.name(),
            crate::matrix::qualified(entries[j].file, wanted)
        ),
        None => suggest(wanted, by_key.keys().copied()).unwrap_or_else(|| {
            let mut names: Vec<&str> = by_key.keys().copied().collect();
            names.sort();
            format!("images: {}", names.join(", "))
        }),
    };
    Err(entry
        .file
        .source
        .error(
            ErrorKind::UnknownDependency,
            written.span(),
            format!(
                "image `{}` inherits from `{}`, which is not an image of this config",
                entry.key.get_ref(),
                written.get_ref()
            ),
        )
        .with_help(help))
}

/// An abstract image's keys that are never inherited would never be used: an error, not a
/// silent no-op.
pub(super) fn check_abstract(entry: &Entry) -> Result<(), ConfigError> {
    let raw = entry.raw;
    let unused = [
        ("matrix", raw.matrix.as_ref().map(Spanned::span)),
        ("exclude", raw.exclude.first().map(Spanned::span)),
        ("include", raw.include.first().map(Spanned::span)),
        ("name", raw.name.as_ref().map(Spanned::span)),
        ("depends_on", raw.depends_on.first().map(Spanned::span)),
    ];
    match unused.into_iter().find_map(|(k, span)| Some((k, span?))) {
        None => Ok(()),
        Some((k, span)) => Err(entry
            .file
            .source
            .error(
                ErrorKind::Type,
                span,
                format!(
                    "image `{}` is abstract, and `{k}` is not inherited: it would never be used",
                    entry.key.get_ref()
                ),
            )
            .with_help(format!("set `{k}` in the images that inherit from it"))),
    }
}

/// The last table of `layers` that sets a key, and the key.
pub(super) fn last<'a, T>(
    layers: &[Layer<'a>],
    key: impl Fn(&'a RawImage) -> Option<&'a T>,
) -> Option<(Layer<'a>, &'a T)> {
    layers
        .iter()
        .rev()
        .find_map(|l| key(l.raw).map(|v| (*l, v)))
}

/// A table key of every layer, merged over `inherited` in order (later wins), each value with
/// the file it is written in.
pub(super) fn merged(
    inherited: &SourcedMap,
    layers: &[Layer],
    key: impl Fn(&RawImage) -> &TextMap,
) -> SourcedMap {
    let mut out = inherited.clone();
    for l in layers {
        out.extend(sourced_map(key(l.raw), &l.file.source));
    }
    out
}

/// `[images.NAME.platform."os/arch"]` of every layer, each for a platform the image builds,
/// merged key by key in order.
pub(super) fn overrides(
    key: &str,
    platforms: &[Platform],
    layers: &[Layer],
) -> Result<BTreeMap<Platform, PlatformOverride>, ConfigError> {
    let mut overrides: BTreeMap<Platform, PlatformOverride> = BTreeMap::new();
    for l in layers {
        let source = &l.file.source;
        for (platform_key, o) in &l.raw.platform {
            let platform = parse_platform(source, platform_key)?;
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
            let from = o
                .from
                .as_ref()
                .map(|f| external_from(source, key, &platform, f))
                .transpose()?;
            let merged = overrides.entry(platform).or_default();
            merged.args.extend(sourced_map(&o.args, source));
            merged.contexts.extend(sourced_map(&o.contexts, source));
            merged.labels.extend(sourced_map(&o.labels, source));
            merged
                .annotations
                .extend(sourced_map(&o.annotations, source));
            if let Some(t) = &o.target {
                merged.target = Some(Sourced::new(t, source));
            }
            let path = |t: &Text| PathText {
                file: l.file.clone(),
                text: t.clone(),
            };
            if let Some(t) = &o.context {
                merged.context = Some(path(t));
            }
            if let Some(t) = &o.dockerfile {
                merged.dockerfile = Some(path(t));
            }
            if from.is_some() {
                merged.from = from;
            }
            if let Some(tags) = &o.tags {
                merged.tags = tags.iter().map(|t| Sourced::new(t, source)).collect();
            }
        }
    }
    for (platform, o) in &overrides {
        check_no_secret_args(key, &o.args)?;
        check_external(key, platform, o)?;
    }
    Ok(overrides)
}

/// `from = "docker://REF"`, parsed, with where it is written.
fn external_from(
    source: &Source,
    key: &str,
    platform: &Platform,
    from: &Text,
) -> Result<(ExternalRef, Sourced), ConfigError> {
    let parsed = from.get_ref().parse::<ExternalRef>().map_err(|e| {
        source
            .error(
                ErrorKind::Reference,
                from.span(),
                format!("`from` of image `{key}` on `{platform}`: {e}"),
            )
            .with_help(FROM_HELP)
    })?;
    Ok((parsed, Sourced::new(from, source)))
}

const FROM_HELP: &str = "e.g. from = \"docker://ghcr.io/acme/app:1.2-windows\" or from = \"docker://ghcr.io/acme/app@sha256:...\"";

/// A platform taken `from` a registry image is not built: keys that say how to build it
/// would be ignored, so they are an error, pointed at whichever layer wrote them.
fn check_external(key: &str, platform: &Platform, o: &PlatformOverride) -> Result<(), ConfigError> {
    // `Source` is an `Arc`: cloned, not borrowed, so both kinds of value fit one iterator.
    let sourced = |(field, s): (&'static str, &Sourced)| (field, s.source.clone(), s.text.span());
    let path =
        |(field, p): (&'static str, &PathText)| (field, p.file.source.clone(), p.text.span());
    let written = o
        .args
        .values()
        .map(|s| ("args", s))
        .chain(o.contexts.values().map(|s| ("contexts", s)))
        .chain(o.target.iter().map(|s| ("target", s)))
        // Per-platform tags are copies of a built platform's entry; not wired for `from` yet.
        .chain(o.tags.iter().map(|s| ("tags", s)))
        .map(sourced)
        .chain(
            [("context", &o.context), ("dockerfile", &o.dockerfile)]
                .into_iter()
                .filter_map(|(field, p)| Some((field, p.as_ref()?)))
                .map(path),
        )
        .next();
    let (Some((_, from)), Some((field, source, span))) = (&o.from, written) else {
        return Ok(());
    };
    Err(source
        .error(
            ErrorKind::Type,
            span,
            format!(
                "image `{key}` takes `{platform}` `from` a registry image, which is not built: `{field}` does not apply"
            ),
        )
        .at(&from.source, from.text.span(), Some("taken from a registry image here"))
        .with_help("remove `from` to build this platform here, or remove the build settings of this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<File> {
        Arc::new(File {
            index: 0,
            source: Source::new("m.toml".into(), "m.toml".into(), String::new()),
            dir: PathBuf::from("/w"),
            rel_dir: PathBuf::from("."),
            vars: BTreeMap::new(),
            registry: None,
            chain: Vec::new(),
        })
    }

    /// `(name, inherits)` → each image's chain, by name.
    fn chains_of(images: &[(&str, &[&str])]) -> Result<Vec<Vec<String>>, ConfigError> {
        let file = file();
        let keys: Vec<Spanned<String>> = images
            .iter()
            .map(|(k, _)| Spanned::new(0..0, k.to_string()))
            .collect();
        let raws: Vec<RawImage> = images
            .iter()
            .map(|(_, inherits)| {
                let list: Vec<String> = inherits.iter().map(|i| format!("{i:?}")).collect();
                toml::from_str(&format!("inherits = [{}]", list.join(", "))).unwrap()
            })
            .collect();
        let entries: Vec<Entry> = keys
            .iter()
            .zip(&raws)
            .map(|(key, raw)| Entry {
                file: &file,
                key,
                raw,
            })
            .collect();
        Ok(chains(&entries)?
            .into_iter()
            .map(|c| c.into_iter().map(|i| images[i].0.to_string()).collect())
            .collect())
    }

    #[test]
    fn ancestors_apply_first_in_listed_order_and_a_diamond_applies_twice() {
        let c = chains_of(&[("a", &["b", "c"]), ("b", &["d"]), ("c", &["d"]), ("d", &[])]).unwrap();
        assert_eq!(c[0], ["d", "b", "d", "c", "a"]);
        assert_eq!(c[1], ["d", "b"]);
        assert_eq!(c[3], ["d"]);
    }

    #[test]
    fn a_name_defined_twice_is_an_error_even_when_abstract() {
        let e = chains_of(&[("_common", &[]), ("_common", &[]), ("api", &["_common"])]);
        assert!(
            e.unwrap_err()
                .message()
                .contains("`_common` is defined in both")
        );
    }

    #[test]
    fn a_cycle_names_its_path_and_an_unknown_name_gets_a_suggestion() {
        let e = chains_of(&[("a", &["b"]), ("b", &["a"])]).unwrap_err();
        assert!(
            e.message().contains("`inherits` cycle: a -> b -> a"),
            "{}",
            e.message()
        );
        let e = chains_of(&[("a", &["a"])]).unwrap_err();
        assert!(e.message().contains("cycle: a -> a"), "{}", e.message());
        let e = chains_of(&[("_common", &[]), ("api", &["_comon"])]).unwrap_err();
        let help = miette::Diagnostic::help(&e).unwrap().to_string();
        assert_eq!(help, "did you mean `_common`?");
    }
}
