//! Config load + plan on arbitrary input: any result is fine, a panic or a hang is not.
//! `cargo fuzz run plan -- -max_total_time=600` (see the README).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A project directory with the files configs commonly name, made once.
fn project() -> &'static tempfile::TempDir {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        for d in ["", "base", "app", "services/api"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
            std::fs::write(dir.path().join(d).join("Dockerfile"), "ARG BASE=r.io/a/base:1\nFROM ${BASE}\nCOPY --from=r.io/a/app:1 / /\n").unwrap();
        }
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = project().path().join("multiarch.toml");
    std::fs::write(&path, text.as_bytes()).unwrap();
    let _ = mab::plan_file(&path, &[], &mab::Selection::default());
});
