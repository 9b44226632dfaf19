//! What the environment says about a plan, read once, at the start: the stages below take it
//! from here and never read the environment themselves.

use std::ffi::OsString;

#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `MAB_PODMAN`, split like a shell would, so it can carry global options such as
    /// `--remote --connection ci`; over `[builder] podman`.
    pub podman: Option<Vec<String>>,
    /// `CONTAINERS_REGISTRIES_CONF`: podman reads it, skopeo 1.9 does not, so mab passes it on.
    pub registries_conf: Option<OsString>,
    /// `SOURCE_DATE_EPOCH`, for `[builder] reproducible`.
    pub source_date_epoch: Option<String>,
}

impl Environment {
    /// This process's environment.
    pub fn from_process() -> Self {
        Self {
            podman: std::env::var("MAB_PODMAN")
                .ok()
                .and_then(|v| shlex::split(&v))
                .filter(|v| !v.is_empty()),
            registries_conf: std::env::var_os("CONTAINERS_REGISTRIES_CONF"),
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
        }
    }
}
