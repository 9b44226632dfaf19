//! The content check: every ELF file a build's own layers added must be of the build's
//! platform (machine, class and byte order), unless `[check] allow` exempts it.
//!
//! [`elf`] reads headers, [`check`] judges files (pure), [`layers`] finds the build's own layers
//! and reads them from podman's storage; a build on another node is read from the registry
//! instead: [`layout`] (an OCI layout skopeo copied) and [`tarball`] (its layers' tar streams).

pub mod check;
pub mod elf;
pub mod layers;
pub mod layout;
pub mod plan;
pub mod stack;
pub mod steps;
pub mod tarball;

pub use check::{Checker, Counts, Entry, Mismatch};
pub use elf::Machine;
