//! Tags that move together, end to end: the real podman and skopeo push through a
//! fault-injecting proxy (tests/common/proxy.rs) in front of a real registry on 127.0.0.1, and
//! what the tags hold is read from the registry itself. Needs what scripts/test-env.sh sets up
//! and `MAB_E2E=1` (see tests/e2e.rs).

use crate::common;

use common::{BASE, text};

use std::process::Output;

use sha2::{Digest, Sha256};

use common::proxy::{Fault, Proxy};
use common::registry::Registry;
use common::{Project, find, reported};

/// `mab run ARGS` in `p`: the output and the report.
fn run(p: &Project, args: &[&str]) -> (Output, serde_json::Value) {
    reported(p, args)
}

fn raw(reference: &str) -> Vec<u8> {
    common::registry::raw_bytes(reference)
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `(status, before, digest)` of each tag of the report's one list, by its tag.
fn tags(report: &serde_json::Value) -> Vec<(String, String, String, String)> {
    let list = find(&report["manifests"], "image", "app");
    list["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or("null").to_string();
            let tag = s("reference").rsplit(':').next().unwrap().to_string();
            (tag, s("status"), s("before"), s("digest"))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn tags_move_together_and_the_report_says_which_did() {
    let _serial = common::e2e_serial();
    let registry = Registry::start();
    let proxy = Proxy::start(registry.port);
    // mab pushes through the proxy; the test reads the registry directly, same repository.
    let repo = format!("{}/tags/app", registry.host());
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "[defaults]\nregistry = \"{host}/tags\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1.0\", \"latest\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[builder]\nretries = 1\n\n[images.app]\ncontext = \"app\"\n",
            host = proxy.host()
        ),
    );
    // No RUN step: nothing is emulated, each build is a COPY.
    p.file("app/Dockerfile", &format!("FROM {BASE}\nCOPY file /file\n"));
    p.file("app/file", "1");
    p.git_commit("fixture");

    // A first release: both tags and the marker hold the very same bytes.
    let (out, first) = run(&p, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let old = raw(&format!("{repo}:1.0"));
    assert_eq!(raw(&format!("{repo}:latest")), old, "1.0 and latest differ");
    let marker = find(&first["manifests"], "image", "app")["marker"]["reference"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(raw(&format!("{repo}:{marker}")), old);
    let old = digest(&old);

    // The registry answers 503 to every PUT of `latest`: 1.0 moves, latest does not, and the
    // report and summary say so, with both digests.
    p.file("app/file", "2");
    proxy.fail(
        Fault::Status {
            method: "PUT",
            reference: "latest".into(),
            status: 503,
        },
        None,
    );
    let (out, half) = run(&p, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        proxy.hits() >= 2,
        "the push of latest was retried once:\n{}",
        text(&out)
    );
    let new = digest(&raw(&format!("{repo}:1.0")));
    assert_ne!(new, old);
    assert_eq!(digest(&raw(&format!("{repo}:latest"))), old);
    assert_eq!(
        tags(&half),
        [
            ("1.0".into(), "moved".into(), old.clone(), new.clone()),
            ("latest".into(), "failed".into(), old.clone(), new.clone()),
        ]
    );
    let summary = text(&out);
    assert!(summary.contains(" moved "), "{summary}");
    assert!(summary.contains(" FAILED "), "{summary}");

    // --atomic, with another change: 1.0 moves, latest fails, and 1.0 is put back to what it
    // held before this run.
    p.file("app/file", "3");
    let (out, atomic) = run(&p, &["--atomic"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let newer = tags(&atomic)[0].3.clone();
    assert_ne!(newer, new);
    assert_eq!(
        tags(&atomic),
        [
            ("1.0".into(), "restored".into(), new.clone(), newer.clone()),
            ("latest".into(), "failed".into(), old.clone(), newer.clone()),
        ]
    );
    assert_eq!(digest(&raw(&format!("{repo}:1.0"))), new);
    assert_eq!(digest(&raw(&format!("{repo}:latest"))), old);

    // The registry answers again: the next run builds nothing (the marker names the index) and
    // moves both tags to it, byte for byte.
    proxy.clear();
    let (out, done) = run(&p, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let built = done["builds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "built")
        .count();
    assert_eq!(built, 0, "{done:#}");
    let one = raw(&format!("{repo}:1.0"));
    assert_eq!(raw(&format!("{repo}:latest")), one);
    assert_eq!(digest(&one), newer);
}
