//! A registry that misbehaves mid-push (issue 17, point 5), end to end: the real podman and
//! docker-registry, with the fault-injecting proxy (tests/common/proxy.rs) between them. A
//! run must end by itself, with a clear error and nothing published, or succeed on a retry;
//! never hang. Needs what tests/e2e.rs needs (`MAB_E2E=1`, scripts/test-env.sh).

use crate::common;

use common::{BASE, text};

use std::process::Output;
use std::time::{Duration, Instant};

use common::Project;
use common::proxy::{Fault, Proxy};
use common::registry::Registry;

/// A run that ends by itself takes a few builds and, at worst, two attempts of each registry
/// step under the limits below; past this it is a hang (it is killed and the test fails).
const HANG: Duration = Duration::from_secs(300);

/// Short limits, so that a failing registry step is stopped within seconds; one retry.
const BUILDER: &str =
    "[builder]\nregistry_timeout = \"20s\"\nregistry_stall = \"5s\"\nretries = 1\n";

struct Setup {
    _serial: std::sync::MutexGuard<'static, ()>,
    registry: Registry,
    proxy: Proxy,
    p: Project,
    /// The list's one push goes to its marker tag, `REPO:mab-inputs-HEX` through the proxy:
    /// this is it up to the HEX, which the test does not know.
    marker: String,
    /// Its release tag in the registry behind the proxy, a copy of what the marker got.
    upstream_tag: String,
}

/// Whether `all` says `before`, a 64-digit hex (a marker's), then `after`.
fn says(all: &str, before: &str, after: &str) -> bool {
    all.match_indices(before).any(|(i, _)| {
        all[i + before.len()..]
            .get(64..)
            .is_some_and(|rest| rest.starts_with(after))
    })
}

/// A registry, the proxy in front of it, and a project whose one image `name` (amd64 and
/// arm64, a layer of 1 MB of its own so that an upload can be cut in its middle) is pushed
/// through the proxy.
fn setup(name: &str, builder: &str) -> Setup {
    let serial = common::e2e_serial();
    let registry = Registry::start();
    let proxy = Proxy::start(registry.port);
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!(
            "{builder}\n[defaults]\nregistry = \"{host}/e2e\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\ntags = [\"1\"]\n\n[registries.\"{host}\"]\ninsecure = true\n\n[images.{name}]\n",
            host = proxy.host()
        ),
    );
    // Random, so that gzip cannot shrink it below the proxy's cut.
    let mut blob = vec![0u8; 1 << 20];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut blob))
        .expect("random bytes");
    std::fs::write(p.path().join("blob"), blob).expect("write the layer's file");
    p.file("Dockerfile", &format!("FROM {BASE}\nCOPY blob /blob\n"));
    Setup {
        marker: format!("{}/e2e/{name}:mab-inputs-", proxy.host()),
        upstream_tag: format!("{}/e2e/{name}:1", registry.host()),
        _serial: serial,
        registry,
        proxy,
        p,
    }
}

/// `mab run` to its end (killed, failing the test, if it hangs), and how long it took.
fn run(s: &Setup) -> (Output, Duration) {
    let started = Instant::now();
    let mut cmd = s.p.mab(&["run", "--progress", "plain"]);
    cmd.env_remove("CONTAINERS_REGISTRIES_CONF");
    let out = common::output_within(&mut cmd, HANG);
    (out, started.elapsed())
}

/// The log of list `name`'s jobs in the project's one run.
fn manifest_log(p: &Project, name: &str) -> String {
    p.job_log(&format!("{name}@manifest"))
        .unwrap_or_else(|| panic!("no log of {name}"))
}

/// The list behind the proxy holds both platforms.
fn assert_complete(s: &Setup, all: &str) {
    let index = s
        .registry
        .raw(&s.upstream_tag)
        .unwrap_or_else(|| panic!("{} was not pushed: {all}", s.upstream_tag));
    let mut platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("an index")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap().to_string())
        .collect();
    platforms.sort();
    assert_eq!(platforms, ["amd64", "arm64"], "{all}");
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn an_upload_reset_on_every_attempt_fails_the_run_and_publishes_nothing() {
    let s = setup("e2e-reset", BUILDER);
    s.proxy.fail(
        Fault::ResetUpload {
            after_bytes: 100_000,
        },
        None,
    );
    let (out, took) = run(&s);
    let all = text(&out);
    eprintln!("took {took:?}, {} resets:\n{all}", s.proxy.hits());
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        says(
            &all,
            &format!("pushing {}", s.marker),
            &format!(" to registry {} failed", s.proxy.host())
        ),
        "{all}"
    );
    // A cut connection is transient: the first attempt and its retry were both cut.
    assert!(s.proxy.hits() >= 2, "{} resets: {all}", s.proxy.hits());
    let log = manifest_log(&s.p, "e2e-reset");
    assert!(
        log.contains("mab: transient failure, retry 1 of 1 in 1s"),
        "{log}"
    );
    assert!(s.registry.raw(&s.upstream_tag).is_none(), "{all}");
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn an_upload_reset_once_is_retried_and_the_list_is_complete() {
    let s = setup("e2e-reset-once", BUILDER);
    s.proxy.fail(
        Fault::ResetUpload {
            after_bytes: 100_000,
        },
        Some(1),
    );
    let (out, took) = run(&s);
    let all = text(&out);
    eprintln!("took {took:?}:\n{all}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(s.proxy.hits(), 1, "{all}");
    assert_complete(&s, &all);
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_manifest_put_never_answered_is_stopped_by_the_stall_rule() {
    let s = setup("e2e-hang", BUILDER);
    s.proxy
        .fail(Fault::HangManifestPut { reference: None }, None);
    let (out, took) = run(&s);
    let all = text(&out);
    eprintln!("took {took:?}, {} hung PUTs:\n{all}", s.proxy.hits());
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        says(
            &all,
            &format!("pushing {}", s.marker),
            &format!(
                " to registry {} failed: `podman manifest push` of {}",
                s.proxy.host(),
                s.marker
            )
        ) && says(
            &all,
            &format!("`podman manifest push` of {}", s.marker),
            " stalled: it moved no data for 5s ([builder] registry_stall) and was stopped"
        ),
        "{all}"
    );
    assert_eq!(s.proxy.hits(), 2, "the attempt and its one retry: {all}");
    assert!(s.registry.raw(&s.upstream_tag).is_none(), "{all}");
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_manifest_put_never_answered_is_stopped_at_the_deadline() {
    // The stall rule out of the way: the deadline alone must end the step.
    let s = setup(
        "e2e-hang-deadline",
        "[builder]\nregistry_timeout = \"10s\"\nregistry_stall = \"1h\"\nretries = 0\n",
    );
    s.proxy
        .fail(Fault::HangManifestPut { reference: None }, None);
    let (out, took) = run(&s);
    let all = text(&out);
    eprintln!("took {took:?}:\n{all}");
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        says(
            &all,
            &format!("`podman manifest push` of {}", s.marker),
            " timed out after 10s ([builder] registry_timeout) and was stopped"
        ),
        "{all}"
    );
    assert_eq!(s.proxy.hits(), 1, "{all}");
    assert!(s.registry.raw(&s.upstream_tag).is_none(), "{all}");
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs MAB_E2E=1 and scripts/test-env.sh: run scripts/test.sh"
)]
fn a_manifest_put_never_answered_once_is_retried_and_the_list_is_complete() {
    let s = setup("e2e-hang-once", BUILDER);
    s.proxy
        .fail(Fault::HangManifestPut { reference: None }, Some(1));
    let (out, took) = run(&s);
    let all = text(&out);
    eprintln!("took {took:?}:\n{all}");
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_eq!(s.proxy.hits(), 1, "{all}");
    assert_complete(&s, &all);
}
