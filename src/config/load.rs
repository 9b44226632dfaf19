//! Reading the files: parsing in parallel, inherited `[defaults]`/`[vars]`, the run's
//! `[builder]`/`[registries]` merged, TOML errors sorted.

use super::*;

/// Reads, parses and checks a config file. `vars` (from `--var`) override the file's `[vars]`.
/// Files named `multiarch.toml` in the directories above it, up to the top of its git work
/// tree, lend it their `[defaults]`, `[vars]` and `[builder]`.
///
/// A file that defines no image is a monorepo's root: every file under its directory is
/// loaded. A file below the top-most root of its git work tree is a member of it: the root's
/// files are loaded, and [`Config::member`] says which are its, as cargo treats a package
/// inside a workspace. Each file is parsed once, whichever it turns out to be.
///
/// Every path the files name must lead inside the repository or below a path that `trusted`
/// allows; the config gets `trusted`'s environment.
pub fn load(
    path: &Path,
    overrides: &[(String, String)],
    trusted: &Trusted,
) -> Result<Config, ConfigError> {
    let written = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let written_dir = dir_of(&written);
    check_config_file(
        &written,
        work_tree_top(&written_dir).unwrap_or(&written_dir),
    )?;
    let path = absolute(path)?;
    let dir = dir_of(&path);
    let file = parse(&path)?;
    let defines_none = |p: &Parsed| p.raw.images.is_empty();
    if defines_none(&file) {
        return load_tree(
            dir.clone(),
            overrides,
            trusted,
            BTreeMap::from([(dir, file)]),
        );
    }
    let mut parsed = BTreeMap::from([(dir.clone(), file)]);
    let top = work_tree_top(&dir).unwrap_or(&dir).to_path_buf();
    parse_above(&mut parsed, std::slice::from_ref(&path), &top)?;
    let root = topmost_root(&dir, &top, |a| parsed.get(a).is_some_and(defines_none));
    match root.map(Path::to_path_buf) {
        Some(root) => {
            let member = normalize_relative(dir.strip_prefix(&root).unwrap_or(&dir));
            let config = load_tree(root, overrides, trusted, parsed)?;
            Ok(Config {
                member: Some(member),
                ..config
            })
        }
        None => load_files(&[path], dir, overrides, trusted, parsed),
    }
}

/// Loads every `multiarch.toml` under `root` ([`discover`]) as one config.
pub fn load_all(
    root: &Path,
    overrides: &[(String, String)],
    trusted: &Trusted,
) -> Result<Config, ConfigError> {
    load_tree(absolute(root)?, overrides, trusted, BTreeMap::new())
}

/// [`load_all`] of an absolute `root`, with the files already `parsed` (keyed by directory).
pub(super) fn load_tree(
    root: PathBuf,
    overrides: &[(String, String)],
    trusted: &Trusted,
    parsed: BTreeMap<PathBuf, Parsed>,
) -> Result<Config, ConfigError> {
    let paths = discover(&root);
    if paths.is_empty() {
        return Err(ConfigError::new(
            ErrorKind::Io,
            format!("no {FILE_NAME} under {}", display_path(&root)),
        )
        .with_help("discovery skips .git, target, node_modules, hidden directories and what .gitignore/.ignore exclude"));
    }
    load_files(&paths, root, overrides, trusted, parsed)
}

/// A parsed file, before its images are resolved.
pub(super) struct Parsed {
    pub(super) source: Source,
    pub(super) raw: RawConfig,
}

pub(super) fn parse(path: &Path) -> Result<Parsed, ConfigError> {
    // Discovery never yields a link; a file found above one may be.
    if path.is_symlink() {
        let dir = dir_of(path);
        check_config_file(path, work_tree_top(&dir).unwrap_or(&dir))?;
    }
    let source = Source::read(path, display_path(path))?;
    let raw: RawConfig = toml::from_str(source.text()).map_err(|e| toml_error(&source, &e))?;
    Ok(Parsed { source, raw })
}

/// The directory the git work tree holding `dir` starts at, if any.
pub(super) fn work_tree_top(dir: &Path) -> Option<&Path> {
    dir.ancestors().find(|a| a.join(".git").exists())
}

/// Parses the `multiarch.toml` files in the directories above `paths`, up to `top`, that
/// `parsed` does not hold yet.
pub(super) fn parse_above(
    parsed: &mut BTreeMap<PathBuf, Parsed>,
    paths: &[PathBuf],
    top: &Path,
) -> Result<(), ConfigError> {
    let mut looked = std::collections::HashSet::new();
    for path in paths {
        let above = path.ancestors().skip(2).take_while(|a| a.starts_with(top));
        for dir in above {
            if !looked.insert(dir) {
                // Seen from a sibling: so are the directories above it.
                break;
            }
            let candidate = dir.join(FILE_NAME);
            if !parsed.contains_key(dir) && candidate.is_file() {
                parsed.insert(dir.to_path_buf(), parse(&candidate)?);
            }
        }
    }
    Ok(())
}

/// The config of the files at `paths`, rooted at `root`; `parsed` holds files already read,
/// keyed by directory (Path's order puts a directory before everything below it, so a file's
/// ancestors are settled before it).
pub(super) fn load_files(
    paths: &[PathBuf],
    root: PathBuf,
    overrides: &[(String, String)],
    trusted: &Trusted,
    mut parsed: BTreeMap<PathBuf, Parsed>,
) -> Result<Config, ConfigError> {
    let top = work_tree_top(&root).unwrap_or(&root).to_path_buf();
    // The repository is the root's work tree: the files above it lend settings, never paths
    // outside it.
    let confine = Confinement::new(&top, trusted.allowed.clone());
    // Parsed in parallel: a monorepo may hold a file per image.
    let unread: Vec<&PathBuf> = paths
        .iter()
        .filter(|p| !parsed.contains_key(&dir_of(p)))
        .collect();
    let read = crate::par::try_map(unread.clone(), |p| parse(p))?;
    parsed.extend(unread.into_iter().map(|p| dir_of(p)).zip(read));
    parse_above(&mut parsed, paths, &top)?;

    let mut inherited: BTreeMap<PathBuf, Inherited> = BTreeMap::new();
    for (dir, file) in &parsed {
        let parent = dir
            .ancestors()
            .skip(1)
            .find_map(|a| inherited.get(a))
            .cloned()
            .unwrap_or_default();
        inherited.insert(dir.clone(), parent.under(file, dir)?);
    }
    let (builder, registries) = run_settings(parsed.values())?;
    let content = super::content::parse(&parsed.values().collect::<Vec<_>>())?;
    // The nodes set up the whole run, as [builder] does: one file declares them.
    let mut with_nodes = parsed.iter().filter(|(_, f)| !f.raw.nodes.is_empty());
    let nodes = match (with_nodes.next(), with_nodes.next()) {
        (None, _) => Vec::new(),
        (Some((dir, file)), None) => {
            super::nodes::parse(&file.source, dir, &file.raw.nodes, &confine)?
        }
        (Some((_, a)), Some((_, b))) => {
            return Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!(
                    "[nodes] is set in {} and in {}",
                    a.source.name(),
                    b.source.name()
                ),
            )
            .with_help(
                "the nodes set up the whole run: declare them once, in the top-most multiarch.toml",
            ));
        }
    };

    let signing = signing(&parsed, &confine)?;

    let mut files = Vec::with_capacity(paths.len());
    let mut raw_images = Vec::new();
    for path in paths {
        let dir = dir_of(path);
        let inh = &inherited[dir.as_path()];
        let mut vars = inh.vars.clone();
        for (k, v) in overrides {
            vars.insert(k.clone(), Scalar::String(v.clone()));
        }
        let chain = dir
            .ancestors()
            .filter(|a| parsed.contains_key(*a))
            .map(|a| a.join(FILE_NAME))
            .collect();
        let rel_dir = pathdiff::diff_paths(&dir, &root)
            .map(|p| normalize_relative(&p))
            .unwrap_or_else(|| dir.clone());
        let parsed_file = parsed.get_mut(&dir).expect("parsed above");
        let file = Arc::new(File {
            index: files.len(),
            source: parsed_file.source.clone(),
            dir,
            rel_dir,
            vars,
            registry: inh.registry.clone(),
            chain,
        });
        let own = std::mem::take(&mut parsed_file.raw.images);
        raw_images.extend(
            own.into_iter()
                .map(|(key, image)| (file.clone(), inh, key, image)),
        );
        files.push(file);
    }
    let entries: Vec<super::inherit::Entry> = raw_images
        .iter()
        .map(|(file, _, key, image)| super::inherit::Entry {
            file,
            key,
            raw: image.get_ref(),
        })
        .collect();
    let chains = super::inherit::chains(&entries)?;
    for e in entries.iter().filter(|e| e.raw.is_abstract) {
        super::inherit::check_abstract(e)?;
    }
    // Abstract images are only inherited from: never built, so never checked on their own.
    let built: Vec<usize> = (0..entries.len())
        .filter(|&i| !entries[i].raw.is_abstract)
        .collect();
    // Each image's paths are checked on disk: in parallel, for monorepos of many images.
    let mut images = crate::par::try_map(built, |i| {
        let (file, inh, key, image) = &raw_images[i];
        let layers: Vec<super::inherit::Layer> = chains[i]
            .iter()
            .map(|&j| super::inherit::Layer {
                file: entries[j].file,
                raw: entries[j].raw,
            })
            .collect();
        resolve_image(file, inh, &confine, key, image.span(), &layers)
    })?;
    images.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(pair) = images.windows(2).find(|w| w[0].key == w[1].key) {
        let (a, b) = (&pair[0], &pair[1]);
        return Err(super::inherit::defined_twice(
            &a.key,
            (&a.file.source, a.key_span.clone()),
            (&b.file.source, b.key_span.clone()),
        ));
    }
    Ok(Config {
        root,
        member: None,
        files,
        images,
        builder,
        registries,
        nodes,
        content,
        signing,
        env: trusted.env.clone(),
        confine,
    })
}

/// `[signing]`: it sets up the whole run, as `[nodes]` does, so one file declares it.
fn signing(
    parsed: &BTreeMap<PathBuf, Parsed>,
    confine: &Confinement,
) -> Result<Option<crate::sign::Signing>, ConfigError> {
    let mut with = parsed.iter().filter(|(_, f)| f.raw.signing.is_some());
    match (with.next(), with.next()) {
        (None, _) => Ok(None),
        (Some((dir, file)), None) => {
            let raw = file.raw.signing.as_ref().expect("filtered");
            crate::sign::Signing::parse(raw, &file.source, dir, confine).map(Some)
        }
        (Some((_, a)), Some((_, b))) => Err(ConfigError::new(
            ErrorKind::Duplicate,
            format!(
                "[signing] is set in {} and in {}",
                a.source.name(),
                b.source.name()
            ),
        )
        .with_help("one key signs the whole run: set it once, in the top-most multiarch.toml")),
    }
}

/// `platforms` of a `[defaults]`: parsed, where it is written, and in which file.
#[derive(Debug, Clone)]
pub(super) struct PlatformList {
    pub(super) platforms: Vec<Platform>,
    pub(super) span: Range<usize>,
    pub(super) source: Source,
}

/// What the images of a directory inherit: the `[defaults]` and `[vars]` of its file over those
/// of the files above it. Lists (platforms, tags) replace; tables merge key by key.
#[derive(Debug, Clone, Default)]
pub(super) struct Inherited {
    pub(super) registry: Option<Sourced>,
    pub(super) platforms: Option<PlatformList>,
    pub(super) tags: Option<Vec<Sourced>>,
    pub(super) push: Option<bool>,
    pub(super) args: SourcedMap,
    pub(super) labels: SourcedMap,
    pub(super) annotations: SourcedMap,
    pub(super) contexts: SourcedMap,
    /// `cache` of the nearest `[defaults]` that sets it (`Some(None)`: `"none"`).
    pub(super) cache: Option<Option<Cache>>,
    /// Each with the file (and its directory) it is written in.
    pub(super) secrets: BTreeMap<String, (RawSecret, Source, PathBuf)>,
    pub(super) vars: BTreeMap<String, Scalar>,
}

impl Inherited {
    /// The settings of `file` (in `dir`) over these.
    fn under(mut self, file: &Parsed, dir: &Path) -> Result<Self, ConfigError> {
        let (d, source) = (&file.raw.defaults, &file.source);
        if let Some(r) = &d.registry {
            self.registry = Some(Sourced::new(r, source));
        }
        if let Some(list) = &d.platforms {
            let parsed = parse_platforms(source, list.get_ref())?;
            self.platforms = Some(PlatformList {
                platforms: parsed.into_iter().map(|(p, _)| p).collect(),
                span: list_span(list.get_ref()).unwrap_or_else(|| list.span()),
                source: source.clone(),
            });
        }
        if let Some(tags) = &d.tags {
            self.tags = Some(tags.iter().map(|t| Sourced::new(t, source)).collect());
        }
        self.push = d.push.or(self.push);
        self.args.extend(sourced_map(&d.args, source));
        self.labels.extend(sourced_map(&d.labels, source));
        self.annotations.extend(sourced_map(&d.annotations, source));
        self.contexts.extend(sourced_map(&d.contexts, source));
        if let Some(c) = &d.cache {
            self.cache = Some(Cache::parse(c, source)?);
        }
        for (id, s) in &d.secrets {
            self.secrets
                .insert(id.clone(), (s.clone(), source.clone(), dir.to_path_buf()));
        }
        self.vars
            .extend(file.raw.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(self)
    }
}

/// `[builder]` and `[registries]` of every file, merged: they set up the one run, so files may
/// repeat a setting but not disagree on it.
pub(super) fn run_settings<'a>(
    files: impl Iterator<Item = &'a Parsed>,
) -> Result<(Builder, BTreeMap<String, RawRegistry>), ConfigError> {
    fn agree<T: PartialEq + Clone + fmt::Debug>(
        what: &str,
        seen: &mut Option<(T, Source)>,
        value: Option<T>,
        source: &Source,
    ) -> Result<(), ConfigError> {
        match (seen.as_ref(), value) {
            (_, None) => Ok(()),
            (None, Some(v)) => {
                *seen = Some((v, source.clone()));
                Ok(())
            }
            (Some((first, _)), Some(v)) if *first == v => Ok(()),
            (Some((first, first_source)), Some(v)) => Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!(
                    "`{what}` is {first:?} in {} but {v:?} in {}",
                    first_source.name(),
                    source.name()
                ),
            )
            .with_help("[builder] and [registries] set up the whole run: set each once, in the top-most multiarch.toml")),
        }
    }
    let mut oci_labels = None;
    let mut reproducible = None;
    // Each duration setting: its name, its text and the file it is first written in, its span.
    type Duration<'n> = (&'n str, Option<(String, Source)>, std::ops::Range<usize>);
    let mut durations: [Duration; 3] = [
        ("timeout", None, 0..0),
        ("registry_timeout", None, 0..0),
        ("registry_stall", None, 0..0),
    ];
    let mut retries = None;
    let mut insecure: BTreeMap<String, Option<(bool, Source)>> = BTreeMap::new();
    for file in files {
        let (b, s) = (&file.raw.builder, &file.source);
        refuse_machine_settings(b, s)?;
        agree("[builder] oci_labels", &mut oci_labels, b.oci_labels, s)?;
        agree(
            "[builder] reproducible",
            &mut reproducible,
            b.reproducible,
            s,
        )?;
        agree("[builder] retries", &mut retries, b.retries, s)?;
        let written = [&b.timeout, &b.registry_timeout, &b.registry_stall];
        for ((name, seen, span), t) in durations.iter_mut().zip(written) {
            if let Some(t) = t {
                if seen.is_none() {
                    *span = t.span();
                }
                agree(
                    &format!("[builder] {name}"),
                    seen,
                    Some(t.get_ref().clone()),
                    s,
                )?;
            }
        }
        for (host, r) in &file.raw.registries {
            let seen = insecure.entry(host.clone()).or_default();
            agree(
                &format!("[registries.\"{host}\"] insecure"),
                seen,
                Some(r.insecure),
                s,
            )?;
        }
    }
    let secs = durations.map(|(name, seen, span)| {
        seen.map(|(t, source)| {
            humantime::parse_duration(&t)
                .map(|d| d.as_secs())
                .map_err(|e| {
                    source
                        .error(ErrorKind::Type, span, format!("invalid {name} `{t}`: {e}"))
                        .with_help("write a duration such as \"30m\" or \"1h 30m\"")
                })
        })
        .transpose()
    });
    let [timeout_secs, registry_timeout_secs, registry_stall_secs] = secs;
    fn first<T>(seen: Option<(T, Source)>) -> Option<T> {
        seen.map(|(v, _)| v)
    }
    let builder = Builder {
        oci_labels: first(oci_labels).unwrap_or(true),
        reproducible: first(reproducible).unwrap_or(false),
        timeout_secs: timeout_secs?,
        retries: first(retries).unwrap_or(DEFAULT_RETRIES),
        registry_timeout_secs: registry_timeout_secs?,
        registry_stall_secs: registry_stall_secs?,
    };
    let registries = insecure
        .into_iter()
        .map(|(host, v)| {
            (
                host,
                RawRegistry {
                    insecure: first(v).unwrap_or(false),
                },
            )
        })
        .collect();
    Ok((builder, registries))
}

/// Sorts a TOML error into syntax, unknown key or type, and adds a did-you-mean to unknown keys.
pub(super) fn toml_error(source: &Source, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().to_string();
    let (kind, help) = if let Some(rest) = message.strip_prefix("unknown field `") {
        // serde's wording: unknown field `x`, expected one of `a`, `b`
        let word = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        (ErrorKind::UnknownKey, suggest(word, expected))
    } else if [
        "invalid type",
        "missing field",
        "invalid value",
        "invalid length",
        "unknown variant",
    ]
    .iter()
    .any(|p| message.starts_with(p))
    {
        (ErrorKind::Type, None)
    } else {
        (ErrorKind::Syntax, None)
    };
    let err = ConfigError::new(kind, message).with_help_opt(help);
    match e.span() {
        Some(span) => err.at(source, span, None::<String>),
        None => err,
    }
}

pub(super) fn parse_platforms(
    source: &Source,
    list: &[Text],
) -> Result<Vec<(Platform, Range<usize>)>, ConfigError> {
    let mut out: Vec<(Platform, Range<usize>)> = Vec::with_capacity(list.len());
    for item in list {
        let platform = parse_platform(source, item)?;
        if let Some((_, first)) = out.iter().find(|(p, _)| *p == platform) {
            return Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!("platform `{platform}` is listed twice"),
            )
            .at(source, first.clone(), Some("first here"))
            .at(source, item.span(), Some("again here, after normalisation")));
        }
        out.push((platform, item.span()));
    }
    Ok(out)
}

pub(crate) fn parse_platform(source: &Source, item: &Text) -> Result<Platform, ConfigError> {
    item.get_ref().parse::<Platform>().map_err(|e| {
        source
            .error(ErrorKind::Platform, item.span(), format!("invalid platform `{}`: {e}", item.get_ref()))
            .with_help(match e.suggestion() {
                Some(s) => format!("did you mean `{s}`? Platforms are written `os/arch[/variant]`, e.g. `linux/arm/v7`"),
                None => "platforms are written `os/arch[/variant]`, e.g. `linux/amd64` or `linux/arm/v7`".into(),
            })
    })
}

/// `a/./b/../c` → `a/c`, without touching the file system, so plans show tidy relative paths.
pub fn normalize_relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if out
                    .components()
                    .next_back()
                    .is_some_and(|l| matches!(l, Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

/// `[builder] podman` and `global_args` choose the program mab runs and its options: a
/// repository that could set them would run any program on the machine that checks it out (CI
/// with its credentials), so only the machine's environment (`MAB_PODMAN`) may.
fn refuse_machine_settings(b: &RawBuilder, source: &Source) -> Result<(), ConfigError> {
    let span = match (&b.podman, &b.global_args) {
        (Some(v), _) => ("podman", v.span()),
        (None, Some(v)) => ("global_args", v.span()),
        (None, None) => return Ok(()),
    };
    let (key, span) = span;
    Err(source
        .error(
            ErrorKind::MachineSetting,
            span,
            format!("`[builder] {key}` chooses the program mab runs, which a repository's config cannot"),
        )
        .with_help(
            "remove it, and set MAB_PODMAN in the environment of the machine instead, with any global options: MAB_PODMAN=\"/opt/podman --root /srv/storage\"",
        ))
}
