//! The serde types that read `multiarch.toml`, and the JSON schema generated from them.

use super::*;

/// A `multiarch.toml` file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "multiarch.toml",
    description = "Multi-arch image builds with mab: images, platforms, tags and their templates"
)]
pub struct RawConfig {
    /// Settings that apply to every image unless the image sets its own.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// User variables, available to templates as `vars.NAME`; `--var NAME=VALUE` overrides them.
    #[serde(default)]
    pub vars: BTreeMap<String, Scalar>,
    /// The images to build, by name. The name is used in `depends_on`, on the command line,
    /// and for the default repository `<registry>/<name>`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawImage>")]
    pub images: BTreeMap<Spanned<String>, Spanned<RawImage>>,
    /// How podman is called.
    #[serde(default)]
    pub builder: RawBuilder,
    /// Per-registry settings, keyed by `host[:port]` (`[registries."127.0.0.1:5000"]`).
    #[serde(default)]
    pub registries: BTreeMap<String, RawRegistry>,
    /// Build nodes: each platform's builds on a machine that builds it natively, through
    /// podman's remote API. Without them, everything builds on this machine.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawNode>")]
    pub nodes: BTreeMap<Spanned<String>, Spanned<RawNode>>,
    /// An SBOM per platform image, attached to it as an OCI 1.1 artifact.
    pub sbom: Option<RawSbom>,
    /// An in-toto SLSA provenance statement per platform image, attached as the SBOM is.
    pub provenance: Option<RawProvenance>,
    /// What every build's own layers are checked for before its image joins a list.
    pub check: Option<RawCheck>,
    /// Signs every image and index a run pushes, in cosign's format (tag
    /// `sha256-<hex>.sig` beside the image): the key that signs.
    pub signing: Option<crate::sign::config::RawSigning>,
}

/// `[nodes.NAME]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// `ssh://user@host[:port]/run/podman/podman.sock` or `unix:///path/podman.sock`.
    pub url: Option<String>,
    /// A `podman system connection` by name, instead of `url`.
    pub connection: Option<String>,
    /// Platforms it builds natively; the first is its own (the build platform of its builds).
    #[schemars(with = "Vec<String>")]
    pub platforms: Vec<Spanned<String>>,
    /// Platforms it builds through an emulator, when no node builds them natively.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub emulates: Vec<Spanned<String>>,
    /// Builds at once (default 1).
    pub jobs: Option<usize>,
    /// The ssh key file for an `ssh://` url, relative to this file or `~/...`. Like every path
    /// a config names, it must be inside the repository unless `--allow fs.read=PATH` allows it.
    #[schemars(with = "Option<String>")]
    pub identity: Option<Spanned<String>>,
}

/// `[builder]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBuilder {
    /// Refused: the program mab runs is the machine's choice, never a repository's. Set
    /// `MAB_PODMAN` in the environment instead: `MAB_PODMAN="/opt/podman --root /srv/storage"`.
    #[schemars(with = "Option<String>")]
    pub podman: Option<Spanned<String>>,
    /// Refused, as `podman` is: podman's global options go in `MAB_PODMAN`.
    #[schemars(with = "Option<Vec<String>>")]
    pub global_args: Option<Spanned<Vec<String>>>,
    /// Add the standard `org.opencontainers.image.*` labels (source, revision, created,
    /// version) to every image (default true). Labels set in the config win.
    pub oci_labels: Option<bool>,
    /// Build with `--timestamp` set to the commit time, for reproducible images (default false).
    pub reproducible: Option<bool>,
    /// A build running longer fails, e.g. `"30m"` or `"1h 30m"` (default: no limit).
    /// `mab run --timeout` overrides it.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Retries of a push or registry read after a transient failure such as a refused
    /// connection or a 503, with exponential backoff from 1 s (default 3).
    pub retries: Option<u32>,
    /// Each command that talks to a registry (push, copy, read-back, `manifest add` of a
    /// pushed image) running longer is stopped and retried, e.g. `"30m"` (default 15m).
    /// `mab run --registry-timeout` overrides it.
    #[schemars(with = "Option<String>")]
    pub registry_timeout: Option<Spanned<String>>,
    /// A command that talks to a registry and moves no data for this long is stopped and
    /// retried, e.g. `"2m"` (default 60s).
    #[schemars(with = "Option<String>")]
    pub registry_stall: Option<Spanned<String>>,
}

/// `[registries."host[:port]"]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegistry {
    /// Plain HTTP or an unverified certificate: push and read with `--tls-verify=false`.
    #[serde(default)]
    pub insecure: bool,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Repository prefix: an image's repository defaults to `<registry>/<name>`. Template.
    #[schemars(with = "Option<String>")]
    pub registry: Option<Text>,
    /// Platforms to build, such as `linux/amd64` or `linux/arm/v7`.
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<Spanned<Vec<Text>>>,
    /// Tags each manifest list is pushed to. Templates; they cannot use `platform`. One that
    /// renders empty is dropped, one rendered twice is pushed once.
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Option<Vec<Text>>,
    /// Whether manifest lists are pushed to the registry (default true).
    pub push: Option<bool>,
    /// Build arguments for every image (an image's own win). Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: TextMap,
    /// Labels for every image (an image's own win). Templates; they may use `platform`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: TextMap,
    /// Annotations for every image (an image's own win). Templates; they may use `platform`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: TextMap,
    /// Build secrets for every image (an image's own win), by id.
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    /// Named build contexts for every image (an image's own win). See `images.NAME.contexts`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub contexts: TextMap,
    /// A layer cache in a registry, for CI machines that start empty: `"registry"` (each
    /// image's `REPOSITORY/cache`), `{ from = "REF", to = "REF" }`, or `"none"`. Built with
    /// `--layers --cache-from --cache-to`.
    #[schemars(with = "Option<RawCache>")]
    pub cache: Option<Spanned<RawCache>>,
}

/// `cache`: `"registry"`, `"none"`, or where the cache is read from and written to.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawCache {
    /// `"registry"` or `"none"`.
    Mode(String),
    Refs(RawCacheRefs),
}

/// `cache = { from = "REF", to = "REF" }`: repositories, without a tag.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCacheRefs {
    /// Where cached layers are looked up (`--cache-from`).
    pub from: Option<String>,
    /// Where built layers are pushed (`--cache-to`).
    pub to: Option<String>,
}

/// A build secret, read by podman (`--secret`), never by mab's plan or logs: `{ file = "~/.npmrc" }`
/// or `{ env = "GH_TOKEN" }`. A Dockerfile uses it with `RUN --mount=type=secret,id=ID`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// A file (`~/` is the home directory; relative paths are relative to this file).
    #[schemars(with = "Option<String>")]
    pub file: Option<Text>,
    /// An environment variable of the `mab run` process.
    #[schemars(with = "Option<String>")]
    pub env: Option<Text>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `[images.NAME]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Images whose keys this one takes, as `docker buildx bake`'s `inherits`: theirs in
    /// order, then its own (later wins; tables and platform overrides merge key by key, lists
    /// are replaced). Names or qualified names (`libs/base:_common`), of any file. Does not
    /// make this image wait for them (that is `depends_on`). `matrix`, `exclude`, `include`,
    /// `name` and `depends_on` are not inherited.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub inherits: Vec<Text>,
    /// Only inherited from: never built or pushed, and needs no context, Dockerfile, tags
    /// or repository of its own (default false). Not inherited.
    #[serde(default, rename = "abstract")]
    pub is_abstract: bool,
    /// Build context directory, relative to this file (default `.`). Template; it may use
    /// `matrix` and `platform` (`python/{{ matrix.python }}`).
    #[schemars(with = "Option<String>")]
    pub context: Option<Text>,
    /// Dockerfile, relative to the context (default `Dockerfile`). Template; it may use
    /// `matrix` and `platform` (`Dockerfile.{{ matrix.target }}`).
    #[schemars(with = "Option<String>")]
    pub dockerfile: Option<Text>,
    /// Repository to push to (default `<registry>/<name>`), or a list of them: every tag is
    /// pushed to each (`["quay.io/argoproj/argocd", "ghcr.io/argoproj/argo-cd/argocd"]`); the
    /// first is where the images and the index are pushed from. Templates.
    #[schemars(with = "Option<RawRepositories>")]
    pub repository: Option<Spanned<RawRepositories>>,
    /// Instance name template for matrix images (default `<name>-<value>-...`). Template.
    #[schemars(with = "Option<String>")]
    pub name: Option<Text>,
    /// Images (names, or instance names of matrix images) built before this one, on each platform.
    /// Optional when a `FROM` line names the dependency's repository and tag.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Text>,
    /// Build arguments. Templates; they may use `platform`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: TextMap,
    /// Image labels. Templates; they may use `platform` (each platform's build is an image of
    /// its own).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: TextMap,
    /// Annotations of each platform's image manifest (not of the index). Templates; they may
    /// use `platform`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: TextMap,
    /// Build secrets by id, on top of `defaults.secrets`.
    #[serde(default)]
    pub secrets: BTreeMap<String, RawSecret>,
    /// Build stage to stop at (`--target`); it must name a stage of the Dockerfile. Template.
    #[schemars(with = "Option<String>")]
    pub target: Option<Text>,
    /// Named build contexts, as in `docker buildx bake`: a `FROM NAME`, `COPY --from=NAME` or
    /// `RUN --mount=from=NAME` reads NAME from here, before stages and images. Values:
    /// `"target:IMAGE"` (an image of this config, built first, for the platform the stage
    /// needs), `"docker-image://REF"` (an image from a registry), `"https://..."` (a tarball),
    /// or a directory relative to this file. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub contexts: TextMap,
    /// Platforms to build (default: `defaults.platforms`).
    #[schemars(with = "Option<Vec<String>>")]
    pub platforms: Option<Spanned<Vec<Text>>>,
    /// Tags (default: `defaults.tags`). Templates; they cannot use `platform`. One that renders
    /// empty is dropped (`{% if matrix.alpine == vars.latest %}latest{% endif %}`), one
    /// rendered twice is pushed once; an image that is pushed must be left with one.
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Option<Vec<Text>>,
    /// Whether to push (default: `defaults.push`, else true).
    pub push: Option<bool>,
    /// A layer cache in a registry (default: `defaults.cache`): `"registry"` (each
    /// image's `REPOSITORY/cache`), `{ from = "REF", to = "REF" }`, or `"none"`. Built with
    /// `--layers --cache-from --cache-to`.
    #[schemars(with = "Option<RawCache>")]
    pub cache: Option<Spanned<RawCache>>,

    /// One image instance per combination of these values (strings, or tables read as
    /// `matrix.KEY.FIELD`). An empty list yields no instance.
    #[schemars(with = "Option<BTreeMap<String, Vec<MatrixValue>>>")]
    pub matrix: Option<Spanned<BTreeMap<String, Vec<MatrixValue>>>>,
    /// Combinations to leave out; a key may be `platform`.
    #[serde(default)]
    #[schemars(with = "Vec<BTreeMap<String, MatrixValue>>")]
    pub exclude: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    /// Extra combinations to build; `platform` restricts one to that platform.
    #[serde(default)]
    #[schemars(with = "Vec<BTreeMap<String, MatrixValue>>")]
    pub include: Vec<Spanned<BTreeMap<String, MatrixValue>>>,
    /// Paths outside the context whose changes also select this image for `mab plan
    /// --changed-since`, relative to this file; globs (`../../libs/common/**`) or directories.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub watch: Vec<Text>,
    /// Per-platform overrides, keyed by platform (`[images.NAME.platform."linux/arm64"]`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawPlatformOverride>")]
    pub platform: BTreeMap<Spanned<String>, RawPlatformOverride>,
}

/// `repository`: one template, or a list of them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawRepositories {
    One(String),
    Many(Vec<String>),
}

impl RawImage {
    /// The `repository` templates, each spanning the whole value (toml gives no spans inside
    /// an untagged list); `None` when the image does not set it.
    pub fn repositories(&self) -> Option<Vec<Text>> {
        let r = self.repository.as_ref()?;
        let one = |s: &String| Spanned::new(r.span(), s.clone());
        Some(match r.get_ref() {
            RawRepositories::One(s) => vec![one(s)],
            RawRepositories::Many(v) => v.iter().map(one).collect(),
        })
    }
}

/// `[images.NAME.platform."os/arch"]`.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlatformOverride {
    /// Build arguments for this platform only, on top of the image's. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub args: TextMap,
    /// Build stage to stop at on this platform. Template.
    #[schemars(with = "Option<String>")]
    pub target: Option<Text>,
    /// This platform's build context, relative to this file, instead of the image's
    /// (a repository that builds arm/v7 from `tf_armv7/`). Template.
    #[schemars(with = "Option<String>")]
    pub context: Option<Text>,
    /// This platform's Dockerfile, relative to its context, instead of the image's
    /// (linuxserver's `Dockerfile.aarch64` for linux/arm64). Template.
    #[schemars(with = "Option<String>")]
    pub dockerfile: Option<Text>,
    /// Named build contexts for this platform only, on top of the image's. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub contexts: TextMap,
    /// Labels of this platform's image, merged over the image's key by key. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: TextMap,
    /// Annotations of this platform's image, merged over the image's key by key. Templates.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub annotations: TextMap,
    /// `docker://REPOSITORY:TAG` or `docker://REPOSITORY@sha256:...`: this platform's entry of
    /// the list is that registry image, not built here (caddy's Windows images, built
    /// elsewhere). A tag is resolved to a digest once per run; the image's platform must be
    /// this key's. Not with `args`, `target` or `contexts`.
    #[schemars(with = "Option<String>")]
    pub from: Option<Text>,
    /// Tags of this platform's own image (its image manifest, not a list), beside the list's
    /// tags: a short tag (`amd64-latest`) goes to every repository of the image, a whole
    /// reference (`ghcr.io/home-assistant/aarch64-base:1.0`) exactly there. Templates; they may
    /// use `platform`; one that renders empty is dropped.
    #[schemars(with = "Option<Vec<String>>")]
    pub tags: Option<Vec<Text>>,
}

/// A variable's value: TOML strings, integers, floats and booleans keep their type in templates.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Integer(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Boolean(b) => write!(f, "{b}"),
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::String(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar::Integer(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar::Boolean(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// One value of a matrix key: a string, or a table of strings (`{ name = "x", arg = "y" }`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MatrixValue {
    String(String),
    Table(BTreeMap<String, String>),
}

impl MatrixValue {
    /// The short form used in default instance names and to match `exclude` strings:
    /// the string itself, or a table's `name` field.
    pub fn short_name(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            Self::Table(t) => t.get("name").map(String::as_str),
        }
    }

    /// Whether an `exclude`/`include` value selects this value: equal, or a string naming a table.
    pub fn matches(&self, pattern: &MatrixValue) -> bool {
        self == pattern
            || matches!(pattern, Self::String(s) if self.short_name() == Some(s.as_str()))
    }
}

impl fmt::Display for MatrixValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Table(t) => {
                let fields: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v:?}")).collect();
                write!(f, "{{ {} }}", fields.join(", "))
            }
        }
    }
}

impl<'de> Deserialize<'de> for MatrixValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MatrixValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                // Numbers are refused on purpose: `1.20` would silently become `1.2`.
                f.write_str("a string or a table of strings (quote numbers: \"1.22\")")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MatrixValue, E> {
                Ok(MatrixValue::String(v.into()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MatrixValue, A::Error> {
                let mut table = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    table.insert(k, v);
                }
                Ok(MatrixValue::Table(table))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<MatrixValue, A::Error> {
                Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// The JSON schema of `multiarch.toml`, generated from the types above.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).expect("a schema serialises")
}
