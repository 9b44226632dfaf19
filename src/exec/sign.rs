//! A list's signing steps, run through the run's supervised, retried registry commands.

use std::path::Path;

use crate::plan::Command;
use crate::sign::SignStep;
use crate::sign::ensure::{self, Registry, SignatureReport};

use super::runner::{Failure, Runner};

/// The run's registry commands, logged to one list's log.
struct Logged<'r, 'a> {
    runner: &'r Runner<'a>,
    log: &'r Path,
}

impl Registry for Logged<'_, '_> {
    fn read(&self, command: &Command) -> Result<Option<Vec<u8>>, String> {
        self.runner.read(command, self.log).map_err(|f| f.reason)
    }

    fn run(&self, command: &Command) -> Result<(), String> {
        self.runner
            .retrying(self.log, || self.runner.logged(command, self.log))
            .map_err(|f| f.reason)
    }
}

impl Runner<'_> {
    /// Makes sure image `digest` carries a signature of the run's key, as `step` says.
    pub(super) fn sign(
        &self,
        step: &SignStep,
        digest: &str,
        log: &Path,
    ) -> Result<SignatureReport, Failure> {
        let Some(signer) = &self.signer else {
            return Err(Failure::new("the plan signs, but the run opened no key"));
        };
        let what = match &step.platform {
            None => "the index".to_string(),
            Some(p) => format!("its {p} image"),
        };
        let registry = Logged { runner: self, log };
        let status = ensure::ensure(&registry, signer, step, digest).map_err(|reason| {
            Failure::new(format!(
                "signing {what} ({digest}) in {} failed: {reason}",
                step.repository
            ))
        })?;
        Ok(SignatureReport {
            reference: step.reference(digest),
            digest: digest.to_string(),
            platform: step.platform.clone(),
            status,
        })
    }
}
