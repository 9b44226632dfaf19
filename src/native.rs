//! Which platforms this machine executes without an emulator: its own, and the 32-bit
//! platform its processor and kernel run beside it (linux/386 on amd64; linux/arm/v7 and v6 on
//! an arm64 machine whose processor runs 32-bit code, which many arm64 server processors do
//! not). A build that runs steps on such a platform needs no binfmt handler.

use std::sync::OnceLock;

use crate::platform::Platform;

/// How mab knows that the machine runs a 32-bit platform natively, for `mab doctor` to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Companion {
    /// The kernel rule: an x86_64 Linux kernel runs i386 code unless built without
    /// `CONFIG_IA32_EMULATION` or booted with `ia32_emulation=0`, neither of which this one says.
    Ia32Emulation,
    /// The kernel accepted the 32-bit personality (`setarch linux32`), which an arm64 kernel
    /// refuses when the processor cannot run 32-bit code (or the kernel has no `CONFIG_COMPAT`).
    Aarch32,
}

/// Whether `host` runs steps of `p` itself, and why when `p` is not `host`'s own architecture.
pub fn native(host: &Platform, p: &Platform) -> Option<Option<Companion>> {
    if p.os() != host.os() {
        return None;
    }
    if p.arch() == host.arch() {
        return Some(None);
    }
    match (host.arch(), p.arch(), p.variant()) {
        ("amd64", "386", _) if ia32_emulation() => Some(Some(Companion::Ia32Emulation)),
        ("arm64", "arm", Some("v6" | "v7") | None) if aarch32() => Some(Some(Companion::Aarch32)),
        _ => None,
    }
}

/// Whether `host` runs steps of `p` without an emulator.
pub fn runs_natively(host: &Platform, p: &Platform) -> bool {
    native(host, p).is_some()
}

/// The x86_64 kernel's rule, read once: off only where the boot line or the kernel's config
/// says so.
fn ia32_emulation() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let off_at_boot = cmdline.split_whitespace().any(|w| {
            matches!(
                w,
                "ia32_emulation=0" | "ia32_emulation=false" | "ia32_emulation=off"
            )
        });
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let release = release.trim();
        let config = std::fs::read_to_string(format!("/boot/config-{release}")).unwrap_or_default();
        let built_without = config.contains("# CONFIG_IA32_EMULATION is not set");
        !off_at_boot && !built_without
    })
}

/// Whether this arm64 machine runs 32-bit code, asked of the kernel once: `setarch linux32`
/// sets the 32-bit personality, which the arm64 kernel refuses ("Invalid argument") unless the
/// processor runs 32-bit code at EL0. Unknown (no `setarch`) counts as no.
fn aarch32() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        std::process::Command::new("setarch")
            .args(["linux32", "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn the_own_architecture_is_native_and_other_systems_are_not() {
        assert_eq!(native(&p("linux/amd64"), &p("linux/amd64")), Some(None));
        assert_eq!(native(&p("linux/amd64"), &p("windows/amd64")), None);
        assert_eq!(native(&p("linux/amd64"), &p("linux/arm64")), None);
        assert_eq!(native(&p("linux/amd64"), &p("linux/s390x")), None);
        // arm64 code never runs on an arm/v7 machine, whatever it says.
        assert_eq!(native(&p("linux/arm/v7"), &p("linux/arm64")), None);
    }

    #[test]
    fn i386_is_native_on_an_amd64_kernel_that_does_not_say_otherwise() {
        if Platform::host().arch() != "amd64" {
            return;
        }
        let config = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        assert!(
            !config.contains("ia32_emulation=0"),
            "this kernel runs no i386"
        );
        assert_eq!(
            native(&p("linux/amd64"), &p("linux/386")),
            Some(Some(Companion::Ia32Emulation))
        );
    }
}
