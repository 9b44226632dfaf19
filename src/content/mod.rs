//! The content check: every ELF file a build's own layers added must be of the build's
//! platform (machine, class and byte order), unless `[check] allow` exempts it.
//!
//! [`elf`] reads headers, [`check`] judges files (pure), [`layers`] finds the build's own layers
//! and reads them from podman's storage.

pub mod check;
pub mod elf;
pub mod layers;
pub mod plan;
pub mod steps;

pub use check::{Checker, Counts, Entry, Mismatch};
pub use elf::Machine;
