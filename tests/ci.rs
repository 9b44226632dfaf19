//! `--ci github|gitlab` and `--junit` on the fast paths: config errors as annotations, the cap
//! on annotations of one kind, the JUnit report against the schema GitLab reads, with the
//! stand-in podman (tests/fake) where a run is needed.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{Project, fake, text};

/// The `::error` lines of an output.
fn errors(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("::error")).collect()
}

/// A workflow command's property, unescaped as the runner does.
fn unescape(s: &str) -> String {
    s.replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

/// `::error PROPS::MESSAGE` as its properties and message.
fn parse(line: &str) -> (std::collections::BTreeMap<String, String>, String) {
    let rest = line.strip_prefix("::error ").expect("an error command");
    let (props, message) = rest.split_once("::").expect("properties, then the message");
    let props = props
        .split(',')
        .map(|p| {
            let (k, v) = p.split_once('=').expect("key=value");
            (k.to_string(), unescape(v))
        })
        .collect();
    (props, unescape(message))
}

#[test]
fn a_config_error_is_one_annotation_at_its_place() {
    let p = Project::new();
    p.file(
        "multiarch.toml",
        "[defaults]\nregistry = \"reg.test/acme\"\n\n[images.app]\ncontext = \"app\"\nplatforms = [\"linux/amd64\", \"linux/armm64\"]\n",
    );
    p.file("app/Dockerfile", "FROM scratch\n");
    let workspace = std::fs::canonicalize(p.path()).unwrap();
    let out = p
        .mab(&["plan"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", &workspace)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = errors(&stdout);
    assert_eq!(lines.len(), 1, "{stdout}");
    let (props, message) = parse(lines[0]);
    assert_eq!(props["file"], "multiarch.toml", "{props:?}");
    // The bad platform string: line 6, after `platforms = ["linux/amd64", `.
    assert_eq!(props["line"], "6", "{props:?}");
    assert_eq!(props["col"], "29", "{props:?}");
    assert_eq!(props["title"], "mab::platform", "{props:?}");
    assert!(message.contains("armm64"), "{message}");
    // Without a CI, no workflow command.
    let plain = p
        .mab(&["plan"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .output()
        .unwrap();
    assert!(errors(&String::from_utf8_lossy(&plain.stdout)).is_empty());
}

/// Twelve images, each failing on amd64 with the stand-in podman.
fn failing_project() -> (Project, String) {
    let p = Project::new();
    let mut toml = String::from(
        "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n",
    );
    let mut fail = Vec::new();
    for n in 0..12 {
        toml.push_str(&format!("\n[images.img{n}]\ncontext = \"img{n}\"\n"));
        p.file(&format!("img{n}/Dockerfile"), "FROM scratch\n");
        fail.push(format!("img{n}:linux-amd64"));
    }
    p.file("multiarch.toml", &toml);
    (p, fail.join(" "))
}

#[test]
fn failed_builds_are_annotated_ten_at_most_with_their_logs_grouped() {
    let (p, fail) = failing_project();
    let summary = p.path().join("summary.md");
    let outputs = p.path().join("outputs");
    let workspace = std::fs::canonicalize(p.path()).unwrap();
    let run = fake::run(
        &p,
        &["--keep-going", "--jobs", "4"],
        &[
            ("FAKE_FAIL", &fail),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_WORKSPACE", workspace.to_str().unwrap()),
        ],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", run.text());
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    let lines = errors(&stdout);
    assert_eq!(lines.len(), 10, "{stdout}");
    for l in &lines {
        let (props, message) = parse(l);
        assert_eq!(props["title"], "mab::build");
        assert!(
            props["file"].starts_with("img") && props["file"].ends_with("/Dockerfile"),
            "{props:?}"
        );
        assert!(message.contains("failed"), "{message}");
    }
    assert!(
        stdout.contains("mab: 2 more mab::build error(s) not annotated"),
        "{stdout}"
    );
    // Each failed build's log tail in a group.
    assert_eq!(stdout.matches("::group::").count(), 12, "{stdout}");
    assert!(
        stdout.contains("error: simulated failure of img3:linux-amd64"),
        "{stdout}"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("## mab run FAILED"), "{md}");
    assert!(
        md.contains("12 build(s): 0 built, 0 unchanged, 12 failed"),
        "{md}"
    );
}

/// A Python with lxml, if this machine has one.
fn python_with_lxml() -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        Command::new(py)
            .args(["-c", "import lxml.etree"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// The JUnit schema (Jenkins xunit-plugin's junit-10.xsd, MIT; tests/fixtures/README.md says
/// where it came from), kept in the repository: CI machines reach no GitHub.
fn junit_xsd() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("MAB_JUNIT_XSD")
        .map(Into::into)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit-10.xsd")
        });
    path.exists().then_some(path)
}

#[test]
#[cfg_attr(
    not(e2e),
    ignore = "needs python3-lxml (scripts/test-env.sh) and MAB_E2E=1"
)]
fn the_junit_report_is_valid_against_the_schema_gitlab_reads() {
    let (Some(py), Some(xsd)) = (python_with_lxml(), junit_xsd()) else {
        panic!(
            "scripts/test-env.sh installs python3-lxml; the schema is {:?}",
            junit_xsd()
        );
    };
    let p = fake::project();
    let junit = p.path().join("junit.xml");
    let run = fake::run(
        &p,
        &["--keep-going", "--junit", junit.to_str().unwrap()],
        &[("FAKE_FAIL", "app:linux-arm64")],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", run.text());
    let script = "import sys\nfrom lxml import etree\nschema = etree.XMLSchema(etree.parse(sys.argv[1]))\ndoc = etree.parse(sys.argv[2])\nschema.assertValid(doc)\nr = doc.getroot()\nprint(r.get('tests'), r.get('failures'))\nfor c in doc.iter('testcase'):\n    f = c.find('failure')\n    print(c.get('classname'), c.get('name'), 'FAILED' if f is not None else 'ok', (f.text or '').strip().splitlines()[-1] if f is not None else '')\n";
    let out = Command::new(py)
        .args(["-c", script])
        .arg(&xsd)
        .arg(&junit)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "not valid JUnit:\n{said}");
    // Six builds; base's and other's lists pushed with 2 tags each; app's skipped.
    assert!(
        said.contains("build app@linux-arm64 FAILED error: simulated failure of app:linux-arm64"),
        "{said}"
    );
    assert!(said.contains("build base@linux-amd64 ok"), "{said}");
    assert!(said.contains("push base ok"), "{said}");
    assert!(
        said.contains("verify base reg.test/acme/base:1 ok"),
        "{said}"
    );
}
