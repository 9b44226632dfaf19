//! `[signing]`, `mab keygen` and `mab verify` where no registry is needed, through the real
//! binary: the key path is confined like every path a config names, a key that does not open
//! is the config's error before anything runs, `mab keygen` never writes over a key, the plan
//! shows each signing step between the push and the first release tag's copy.

use crate::common::{Project, text};

const CONFIG: &str = "[defaults]\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n\n[images.app]\nrepository = \"reg.test/acme/app\"\ntags = [\"1\", \"latest\"]\n";

fn project(signing: &str) -> Project {
    let p = Project::new();
    p.file("multiarch.toml", &format!("{signing}{CONFIG}"));
    p.file("Dockerfile", "FROM scratch\n");
    p.git_commit("fixture");
    p
}

#[test]
fn a_key_outside_the_repository_is_refused_where_it_is_named() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("cosign.key"), "x").unwrap();
    let p = project(&format!(
        "[signing]\nkey = \"{}\"\n\n",
        outside.path().join("cosign.key").display()
    ));
    let out = p.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("multiarch.toml:2:7"), "{said}");
    assert!(said.contains("outside"), "{said}");
}

#[test]
fn keygen_needs_a_password_and_never_writes_over_a_key() {
    let p = Project::new();
    let out = p
        .mab(&["keygen"])
        .env_remove("COSIGN_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("COSIGN_PASSWORD"));
    assert!(!p.path().join("cosign.key").exists());

    let keygen = || {
        p.mab(&["keygen"])
            .env("COSIGN_PASSWORD", "pw")
            .output()
            .unwrap()
    };
    let out = keygen();
    assert!(out.status.success(), "{}", text(&out));
    let key = std::fs::read_to_string(p.path().join("cosign.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));
    let public = std::fs::read_to_string(p.path().join("cosign.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p.path().join("cosign.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let out = keygen();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(p.path().join("cosign.key")).unwrap(),
        key
    );
}

#[test]
fn a_key_that_does_not_open_stops_the_run_before_anything_runs() {
    let p = project("[signing]\nkey = \"cosign.key\"\n\n");
    let out = p
        .mab(&["keygen"])
        .env("COSIGN_PASSWORD", "right")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The stand-in podman would record any command: none may run.
    let out = p
        .mab(&["run", "--progress", "plain"])
        .env("MAB_PODMAN", "/nonexistent/podman")
        .env("COSIGN_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("multiarch.toml:2:7") && said.contains("password does not open it"),
        "{said}"
    );
    assert!(!p.path().join(".mab/runs").exists(), "a run started");
}

#[test]
fn the_plan_signs_every_image_after_the_push_and_before_any_release_tag() {
    let p = project("[signing]\nkey = { env = \"COSIGN_MY_KEY\" }\n\n");
    let out = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["signing"]["key"]["env"], "COSIGN_MY_KEY");
    let steps = plan["manifests"][0]["publish"].as_array().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "record", "record", "push", "sign", "sign", "sign", "copy", "copy"
        ]
    );
    // Pushed to a tag of mab's own, never a release tag, until signed.
    assert_eq!(steps[2]["marker"], true);
    let to = steps[2]["to"].as_str().unwrap();
    assert!(to.starts_with("reg.test/acme/app:mab-signing-"), "{to}");
    let signed: Vec<&str> = steps[3..6]
        .iter()
        .map(|s| s["platform"].as_str().unwrap_or("index"))
        .collect();
    assert_eq!(signed, ["index", "linux/amd64", "linux/arm64"]);

    // Without [signing], no plan mentions it.
    let plain = project("");
    let out = plain.mab(&["plan", "--format", "json"]).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(plan.get("signing").is_none());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"sign\""));
}

#[test]
fn the_plan_signs_each_attachment_before_any_release_tag() {
    let p = project(
        "[signing]\nkey = { env = \"COSIGN_KEY\" }\n[sbom]\ngenerator = \"builtin\"\nformat = \"spdx-json\"\n[provenance]\nmode = \"min\"\n\n",
    );
    let out = p.mab(&["plan", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = plan["manifests"][0]["publish"].as_array().unwrap();
    let signed: Vec<String> = steps
        .iter()
        .take_while(|s| s["step"] != "copy")
        .filter(|s| s["step"] == "sign")
        .map(|s| {
            format!(
                "{} {}",
                s["platform"].as_str().unwrap_or("index"),
                s["attachment"].as_str().unwrap_or("image")
            )
        })
        .collect();
    assert_eq!(
        signed,
        [
            "index image",
            "linux/amd64 image",
            "linux/arm64 image",
            "linux/amd64 application/spdx+json",
            "linux/amd64 application/vnd.in-toto+json",
            "linux/arm64 application/spdx+json",
            "linux/arm64 application/vnd.in-toto+json",
        ]
    );
    let out = p.mab(&["plan"]).output().unwrap();
    let said = text(&out);
    assert!(
        said.contains(
            "# sign the provenance (application/vnd.in-toto+json) of its linux/arm64 image"
        ),
        "{said}"
    );
}

#[test]
fn a_key_variable_the_repository_may_not_name_is_refused_where_it_is_named() {
    for var in ["AWS_SECRET_ACCESS_KEY", "COSIGN_PASSWORD"] {
        let p = project(&format!("[signing]\nkey = {{ env = \"{var}\" }}\n\n"));
        let out = p.mab(&["plan"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let said = text(&out);
        assert!(said.contains("multiarch.toml:2:7"), "{said}");
        assert!(said.contains(var) && said.contains("COSIGN_"), "{said}");
    }
}

#[test]
fn verify_needs_a_public_key() {
    let p = project("");
    let out = p.mab(&["verify"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--key"), "{}", text(&out));
}

/// A registry that stops answering a read fails `mab verify` at `[builder] registry_timeout`,
/// as it fails a run's read: a CI gate cannot hang on it. The read is logged in the verify's
/// own run directory.
#[test]
fn a_registry_read_that_never_answers_fails_verify_at_its_deadline() {
    let p = project("[builder]\nregistry_timeout = \"2s\"\nretries = 0\n\n");
    let keygen = p
        .mab(&["keygen"])
        .env("COSIGN_PASSWORD", "a password")
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    let r = p
        .test()
        .fake_podman()
        .args(["verify", "--key", "cosign.pub"])
        .env("FAKE_READ_HANG", "reg.test/acme/app:1")
        .within(std::time::Duration::from_secs(120))
        .status(1)
        .run();
    let said = r.text();
    assert!(r.has("hang reg.test/acme/app:1"), "{}", r.log);
    assert!(
        said.contains("`skopeo inspect` of reg.test/acme/app:1 timed out after 2s ([builder] registry_timeout) and was stopped"),
        "{said}"
    );
    let log = p.job_log("verify").expect("verify's log");
    assert!(
        log.contains("$ skopeo inspect --raw docker://reg.test/acme/app:1"),
        "{log}"
    );
}
