//! `[signing]`: which key signs what a run pushes.

use std::ops::Range;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::confine::Confinement;
use crate::error::{ConfigError, ErrorKind, Source};

use super::Signer;
use super::key::{self, KeyError};

/// `[signing]`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSigning {
    /// The private key: a file relative to this config file (cosign's encrypted format,
    /// opened with `COSIGN_PASSWORD`, or an unencrypted PKCS#8 P-256 PEM), or
    /// `{ env = "NAME" }`, an environment variable holding the PEM text. Like every path a
    /// config names, a file must be inside the repository unless `--allow fs.read` allows it.
    #[schemars(with = "RawKey")]
    pub key: Spanned<RawKey>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawKey {
    File(String),
    Env {
        /// The environment variable that holds the key's PEM text.
        env: String,
    },
}

/// Where the key comes from, as the plan shows it (never the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    File(PathBuf),
    Env(String),
}

/// `[signing]`, checked: the key's place, and where the config names it (for errors). The
/// plan shows where the key comes from, never the key.
#[derive(Debug, Clone, Serialize)]
pub struct Signing {
    pub key: KeySource,
    #[serde(skip)]
    pub source: Source,
    #[serde(skip)]
    pub span: Range<usize>,
}

/// The prefix of the environment variables a config may name as the key's. The config is the
/// repository's (untrusted): naming any variable would let it make mab sign with whatever
/// key-shaped secret the CI job holds (a deploy key, another project's signing key). Variables
/// named `COSIGN_*` are the ones a CI sets for signing on purpose.
pub const KEY_VAR_PREFIX: &str = "COSIGN_";

/// The environment variable that holds an encrypted key's password, as cosign reads it.
pub const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

impl Signing {
    /// `[signing]` of the config file `source` in `dir`: a key file must be confined.
    pub fn parse(
        raw: &RawSigning,
        source: &Source,
        dir: &Path,
        confine: &Confinement,
    ) -> Result<Self, ConfigError> {
        let span = raw.key.span();
        let key = match raw.key.get_ref() {
            RawKey::File(written) => {
                let path = crate::config::written_path(dir, written);
                confine.check_from(
                    dir,
                    &path,
                    (source, span.clone()),
                    format_args!("signing key `{written}`"),
                )?;
                KeySource::File(path)
            }
            RawKey::Env { env } if env.is_empty() => {
                return Err(source.error(ErrorKind::Type, span, "`env` names no variable"));
            }
            RawKey::Env { env } if !env.starts_with(KEY_VAR_PREFIX) || env == PASSWORD_VAR => {
                return Err(source
                    .error(
                        ErrorKind::Type,
                        span,
                        format!("the signing key may not come from `{env}`: the repository may only name a variable whose name starts with `{KEY_VAR_PREFIX}`"),
                    )
                    .with_help(format!(
                        "put the key's PEM text in a variable such as `{KEY_VAR_PREFIX}PRIVATE_KEY` and name that one (docs/trust.md)"
                    )));
            }
            RawKey::Env { env } => KeySource::Env(env.clone()),
        };
        Ok(Self {
            key,
            source: source.clone(),
            span,
        })
    }

    fn error(&self, message: impl Into<String>) -> ConfigError {
        self.source
            .error(ErrorKind::Path, self.span.clone(), message)
    }

    /// The key's PEM text.
    fn text(&self) -> Result<String, ConfigError> {
        match &self.key {
            KeySource::File(path) => std::fs::read_to_string(path).map_err(|e| {
                self.error(format!("cannot read signing key {}: {e}", path.display()))
            }),
            KeySource::Env(var) => std::env::var(var)
                .map_err(|_| self.error(format!("the signing key's variable {var} is not set"))),
        }
    }

    /// Opens the key (with `password`, for an encrypted one): what a run signs with.
    pub fn open(&self, password: Option<&[u8]>) -> Result<Signer, ConfigError> {
        let text = self.text()?;
        key::parse_private(&text, password)
            .map(Signer::new)
            .map_err(|e| {
                let help = match e {
                    KeyError::NoPassword | KeyError::Password => {
                        format!("set {PASSWORD_VAR} to the password the key was made with")
                    }
                    _ => "make one with `mab keygen` (or `cosign generate-key-pair`)".into(),
                };
                self.error(format!("the signing key cannot be used: {e}"))
                    .with_help(help)
            })
    }

    /// Opens the key with the password from the environment.
    pub fn open_with_env(&self) -> Result<Signer, ConfigError> {
        let password = std::env::var_os(PASSWORD_VAR).map(|p| p.into_encoded_bytes());
        self.open(password.as_deref())
    }
}
