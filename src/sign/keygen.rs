//! `mab keygen`: a key pair in cosign's format, as `cosign generate-key-pair` writes it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{ConfigError, Error, ErrorKind};

use super::config::PASSWORD_VAR;

/// Writes `PREFIX.key` (encrypted with `COSIGN_PASSWORD`, mode 0600) and `PREFIX.pub`; never
/// over an existing file. Returns both paths.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), Error> {
    // No prompt: mab runs in CI as often as at a terminal, and cosign reads the same variable.
    let Some(password) = std::env::var_os(PASSWORD_VAR) else {
        return Err(ConfigError::new(
            ErrorKind::Selection,
            format!(
                "{PASSWORD_VAR} is not set: it is the password the private key is encrypted with"
            ),
        )
        .with_help(format!(
            "export {PASSWORD_VAR}=... (cosign reads the same variable)"
        ))
        .into());
    };
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (key_path, pub_path) = (with(".key"), with(".pub"));
    for p in [&key_path, &pub_path] {
        if p.symlink_metadata().is_ok() {
            return Err(ConfigError::new(
                ErrorKind::Duplicate,
                format!("{} exists: mab keygen never writes over a key", p.display()),
            )
            .with_help("remove it, or choose another --output-key-prefix")
            .into());
        }
    }
    let (private, public) = super::key::generate(password.as_encoded_bytes());
    write_new(&key_path, private.as_bytes(), 0o600)?;
    write_new(&pub_path, public.as_bytes(), 0o644)?;
    Ok((key_path, pub_path))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        file.write_all(bytes)
    };
    write().map_err(|e| {
        anyhow::Error::new(e)
            .context(format!("cannot write {}", path.display()))
            .into()
    })
}
