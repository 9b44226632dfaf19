//! The repository's boundary, run through the real binary: every path a config names stays
//! inside its repository (symlinks followed) unless the command line allows more with
//! `--allow fs.read=PATH`; `env()` in a template never reads a credential; input digests and
//! `--changed-since` never look through a symlink that leaves the context; `--report` is the
//! user's alone. `mab run` goes against the stand-in podman (tests/fake).

use crate::common;

use common::text;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Project;
use common::fake;

const HEAD: &str =
    "[defaults]\nregistry = \"reg.test/acme\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n";

/// A repository, and a directory beside it that is not part of it, holding what a hostile
/// config would like to read: the runner's registry credentials and a Dockerfile.
struct Setup {
    repo: Project,
    outside: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("auth.json"), "{\"auths\": {}}\n").unwrap();
        std::fs::write(outside.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        Self {
            repo: Project::new(),
            outside,
        }
    }

    fn outside(&self) -> PathBuf {
        self.outside.path().canonicalize().unwrap()
    }

    /// `[images.app]` with `body`, where `{OUT}` is the outside directory; returns the config.
    fn image(&self, body: &str, dockerfile: &str) -> String {
        let body = body.replace("{OUT}", &self.outside().display().to_string());
        let config = format!("{HEAD}[images.app]\n{body}");
        self.repo.file("multiarch.toml", &config);
        self.repo.file("Dockerfile", dockerfile);
        config
    }

    fn allow(&self) -> String {
        format!("fs.read={}", self.outside().display())
    }
}

/// `file:line:col` of the first `needle` in `config` (of multiarch.toml).
fn location_of(config: &str, needle: &str) -> String {
    let at = config.find(needle).expect("the needle is in the config");
    let line = config[..at].matches('\n').count() + 1;
    let col = at - config[..at].rfind('\n').map_or(0, |nl| nl + 1) + 1;
    format!("multiarch.toml:{line}:{col}")
}

/// `mab plan` refuses the config with exit 2, naming the place of `needle` and the way out;
/// `mab run` refuses it before podman is called; with `--allow fs.read=OUTSIDE` both work.
fn refused_then_allowed(s: &Setup, config: &str, needle: &str) {
    let out = s.repo.mab(&["plan"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{needle}: {}", text(&out));
    assert!(out.stdout.is_empty(), "{needle}: no plan is printed");
    assert!(
        stderr.contains(&location_of(config, needle)),
        "{needle}: no location {} in\n{stderr}",
        location_of(config, needle)
    );
    assert!(stderr.contains("outside the repository"), "{stderr}");
    assert!(
        stderr.contains("--allow fs.read="),
        "the fix is named: {stderr}"
    );

    let r = fake::run(&s.repo, &[], &[]);
    assert_eq!(r.out.status.code(), Some(2), "{needle}: {}", r.text());
    assert!(
        !r.has("start localhost/mab/app:linux-amd64") && r.pushed().is_empty(),
        "{needle}: nothing is built or pushed:\n{}",
        r.log
    );

    let allow = s.allow();
    let out = s.repo.mab(&["plan", "--allow", &allow]).output().unwrap();
    assert!(out.status.success(), "{needle}: {}", text(&out));
    let r = fake::run(&s.repo, &["--allow", &allow], &[]);
    assert!(r.out.status.success(), "{needle}: {}", r.text());
    assert_eq!(r.pushed(), ["reg.test/acme/app:1"], "{needle}");
}

#[test]
fn a_context_outside_the_repository_is_refused_unless_allowed() {
    let s = Setup::new();
    let config = s.image("context = \"{OUT}\"\n", "FROM scratch\n");
    refused_then_allowed(&s, &config, "\"/");
}

#[test]
fn a_named_context_outside_the_repository_is_refused_unless_allowed() {
    let s = Setup::new();
    // The case: the credentials copied into the image from a named context.
    let name = s
        .outside()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let config = s.image(
        &format!("contexts = {{ loot = \"../{name}\" }}\n"),
        "FROM scratch\nCOPY --from=loot auth.json /\n",
    );
    refused_then_allowed(&s, &config, "\"../");
}

#[test]
fn a_dockerfile_outside_the_repository_is_refused_unless_allowed() {
    let s = Setup::new();
    let config = s.image("dockerfile = \"{OUT}/Dockerfile\"\n", "FROM scratch\n");
    refused_then_allowed(&s, &config, "\"/");
}

#[test]
fn a_secret_file_outside_the_repository_is_refused_unless_allowed() {
    let s = Setup::new();
    let config = s.image(
        "secrets = { auth = { file = \"{OUT}/auth.json\" } }\n",
        "FROM scratch\n",
    );
    refused_then_allowed(&s, &config, "\"/");
}

#[test]
fn symlinks_in_the_repository_are_followed_to_where_they_lead() {
    let s = Setup::new();
    std::os::unix::fs::symlink(s.outside(), s.repo.path().join("link")).unwrap();
    let config = s.image("context = \"link\"\n", "FROM scratch\n");
    refused_then_allowed(&s, &config, "\"link\"");

    // A Dockerfile that is a link to a file outside.
    let s = Setup::new();
    let config = s.image("dockerfile = \"Containerfile\"\n", "FROM scratch\n");
    std::os::unix::fs::symlink(
        s.outside().join("Dockerfile"),
        s.repo.path().join("Containerfile"),
    )
    .unwrap();
    refused_then_allowed(&s, &config, "\"Containerfile\"");

    // An ignore file is read too (by podman, and by mab to hash the context).
    let s = Setup::new();
    let config = s.image("context = \"app\"\n", "FROM scratch\n");
    s.repo.file("app/Dockerfile", "FROM scratch\n");
    let ignore = s.repo.path().join("app/.dockerignore");
    std::os::unix::fs::symlink(s.outside().join("auth.json"), ignore).unwrap();
    refused_then_allowed(&s, &config, "\"app\"");
}

#[test]
fn watch_patterns_and_node_keys_are_confined_too() {
    for (body, needle) in [
        ("watch = [\"/etc/**\"]\n", "\"/etc"),
        ("watch = [\"../*\"]\n", "\"../"),
    ] {
        let s = Setup::new();
        let config = s.image(body, "FROM scratch\n");
        let out = s.repo.mab(&["plan"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&location_of(&config, needle)), "{stderr}");
    }
    let s = Setup::new();
    let node = "[nodes.arm]\nurl = \"ssh://ci@arm.test/run/podman/podman.sock\"\nidentity = \"{OUT}/id\"\nplatforms = [\"linux/amd64\"]\n\n";
    let config = format!(
        "{}{HEAD}[images.app]\n",
        node.replace("{OUT}", &s.outside().display().to_string())
    );
    s.repo.file("multiarch.toml", &config);
    s.repo.file("Dockerfile", "FROM scratch\n");
    let out = s.repo.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&location_of(&config, "\"/")), "{stderr}");
    let out = s
        .repo
        .mab(&["plan", "--allow", &s.allow()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_node_key_in_the_home_directory_is_allowed_with_a_tilde() {
    let s = Setup::new();
    let home = s.outside();
    let config = format!(
        "[nodes.arm]\nurl = \"ssh://ci@arm.test/run/podman/podman.sock\"\nidentity = \"~/.ssh/ci\"\nplatforms = [\"linux/amd64\"]\n\n{HEAD}[images.app]\n"
    );
    s.repo.file("multiarch.toml", &config);
    s.repo.file("Dockerfile", "FROM scratch\n");
    let plan = |args: &[&str]| s.repo.mab(args).env("HOME", &home).output().unwrap();
    let out = plan(&["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&location_of(&config, "\"~/")),
        "{}",
        text(&out)
    );
    // The shell leaves `~` after `fs.read=` alone: mab expands it.
    let out = plan(&["plan", "--format", "json", "--allow", "fs.read=~/.ssh"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let argv = common::strings(&plan["builds"][0]["argv"]);
    let at = argv
        .iter()
        .position(|a| a == "--identity")
        .expect("--identity");
    assert_eq!(argv[at + 1], format!("{}/.ssh/ci", home.display()));
}

/// A monorepo member: `services/api/multiarch.toml` of a git work tree, whose context is the
/// top of the work tree and which reads `libs/` beside it.
fn member(p: &Project) -> String {
    let config = format!(
        "{HEAD}[images.api]\ncontext = \"../..\"\ndockerfile = \"services/api/Dockerfile\"\ncontexts = {{ libs = \"../../libs\" }}\nwatch = [\"../../libs/**\"]\n"
    );
    p.file("services/api/multiarch.toml", &config);
    p.file(
        "services/api/Dockerfile",
        "FROM scratch\nCOPY --from=libs . /\n",
    );
    p.file("libs/common/lib.txt", "common\n");
    config
}

#[test]
fn parent_paths_that_stay_in_the_git_work_tree_are_fine() {
    let p = Project::new();
    member(&p);
    p.git_commit("member");
    let out = p
        .mab(&["plan", "-f", "services/api/multiarch.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // Without git, the repository is the config's directory: the same paths leave it.
    let p = Project::new();
    let config = member(&p);
    let out = p
        .mab(&["plan", "-f", "services/api/multiarch.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&location_of(&config, "\"../..\"")),
        "{stderr}"
    );
}

#[test]
fn a_config_file_that_links_out_of_the_repository_is_not_read() {
    // A one-line token file: a syntax error would quote it.
    let s = Setup::new();
    let token = s.outside().join("token");
    std::fs::write(&token, format!("{CANARY}\n")).unwrap();
    std::os::unix::fs::symlink(&token, s.repo.path().join("multiarch.toml")).unwrap();
    s.repo.file("Dockerfile", "FROM scratch\n");
    let out = s.repo.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains(CANARY), "{}", text(&out));
    assert!(
        text(&out).contains("outside the repository"),
        "{}",
        text(&out)
    );

    // The same as a file above the one named, in a git work tree: it lends its defaults.
    s.repo
        .file("svc/multiarch.toml", &format!("{HEAD}[images.app]\n"));
    s.repo.file("svc/Dockerfile", "FROM scratch\n");
    s.repo.git_commit("a linked config above a member");
    let out = s
        .repo
        .mab(&["plan", "-f", "svc/multiarch.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains(CANARY), "{}", text(&out));

    // Named by its own path, the user's choice, it is read (and is no config).
    let out = s
        .repo
        .mab(&["plan", "-f", token.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("mab::syntax"), "{}", text(&out));
}

#[test]
fn only_the_command_line_allows() {
    // No table of a config has a key that allows anything.
    let s = Setup::new();
    s.image(
        "context = \"{OUT}\"\nallow = [\"fs.read={OUT}\"]\n",
        "FROM scratch\n",
    );
    let out = s.repo.mab(&["plan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("mab::unknown-key"), "{}", text(&out));
    // Only fs.read is an entitlement.
    s.repo
        .test()
        .args(["plan", "--allow", "fs.write=/"])
        .status(2)
        .stderr_has("write fs.read=PATH")
        .run();
}

const CANARY: &str = "hunter2-canary-4c1d";

#[test]
fn env_of_a_credential_in_a_template_is_refused_and_never_printed() {
    let templates = [
        (
            "labels = { x = \"{{ env('SOME_TOKEN') }}\" }\n",
            "SOME_TOKEN",
        ),
        (
            "args = { V = \"{{ env('registry_password') }}\" }\n",
            "registry_password",
        ),
        // A name built at render time is judged as it is called.
        ("tags = [\"{{ env('GH_' ~ 'AUTH') }}\"]\n", "GH_AUTH"),
        ("name = \"{{ env('DEPLOY_KEY', 'x') }}\"\n", "DEPLOY_KEY"),
    ];
    for (body, var) in templates {
        let s = Setup::new();
        s.image(body, "FROM scratch\n");
        for args in [&["plan"][..], &["plan", "--format", "json"]] {
            let out = s.repo.mab(args).env(var, CANARY).output().unwrap();
            assert_eq!(out.status.code(), Some(2), "{body}: {}", text(&out));
            let all = text(&out);
            assert!(!all.contains(CANARY), "{body}: the value is shown:\n{all}");
            assert!(all.contains(&format!("`{var}`")), "{body}: {all}");
            assert!(all.contains("secrets = {"), "{body}: {all}");
        }
        let r = fake::run(&s.repo, &[], &[(var, CANARY)]);
        assert_eq!(r.out.status.code(), Some(2), "{body}: {}", r.text());
        assert!(!r.text().contains(CANARY) && !r.log.contains(CANARY));
        assert!(r.log.is_empty(), "nothing ran:\n{}", r.log);
    }
    // No other way reads the environment: `[vars]` are not templates, and `${}` in a build arg
    // or a Dockerfile names build args, never the process's variables.
    let s = Setup::new();
    let config = format!(
        "{HEAD}[vars]\nx = \"{{{{ env('SOME_TOKEN') }}}}\"\n\n[images.app]\nlabels = {{ x = \"{{{{ vars.x }}}}\" }}\nargs = {{ Y = \"${{SOME_TOKEN}}\" }}\n"
    );
    s.repo.file("multiarch.toml", &config);
    s.repo.file(
        "Dockerfile",
        "ARG B=${SOME_TOKEN:-scratch}\nFROM ${B}\nARG Y\nLABEL y=$Y\n",
    );
    let out = s
        .repo
        .mab(&["plan", "--format", "json"])
        .env("SOME_TOKEN", CANARY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(CANARY), "{}", text(&out));

    // Other variables still render.
    let s = Setup::new();
    s.image(
        "labels = { x = \"{{ env('MAB_TEST_BRANCH') }}\" }\n",
        "FROM scratch\n",
    );
    s.repo
        .test()
        .args(["plan", "--format", "json"])
        .env("MAB_TEST_BRANCH", "main")
        .status(0)
        .stdout_has("x=main")
        .run();
}

#[test]
fn changed_since_does_not_look_through_a_link_out_of_the_context() {
    let s = Setup::new();
    s.image("context = \"app\"\n", "FROM scratch\n");
    s.repo.file("app/Dockerfile", "FROM scratch\nCOPY . /\n");
    std::os::unix::fs::symlink(
        s.outside().join("auth.json"),
        s.repo.path().join("app/auth.json"),
    )
    .unwrap();
    s.repo.git_commit("a link out of the context");
    std::fs::write(s.outside().join("auth.json"), "{\"auths\": {\"x\": {}}}\n").unwrap();
    let out = s
        .repo
        .mab(&["plan", "--format", "json", "--changed-since", "HEAD"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["changed_since"]["selected"],
        serde_json::json!([]),
        "{plan:#}"
    );
    // A change inside the context is seen.
    s.repo.file("app/main.txt", "new\n");
    let out = s
        .repo
        .mab(&["plan", "--format", "json", "--changed-since", "HEAD"])
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["changed_since"]["selected"][0]["image"], "app");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_report_is_readable_by_its_owner_only() {
    let p = fake::project();
    let fresh = p.path().join("report.json");
    let r = fake::run(&p, &["--report", fresh.to_str().unwrap(), "other"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert_eq!(mode(&fresh), 0o600);

    // A file that was there, readable by everyone, is narrowed before the report is in it.
    let old = p.path().join("old-report.json");
    // Longer than the report: nothing of it may be left behind the new one.
    std::fs::write(&old, "x".repeat(100_000)).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = fake::run(&p, &["--report", old.to_str().unwrap(), "other"], &[]);
    assert!(r.out.status.success(), "{}", r.text());
    assert_eq!(mode(&old), 0o600);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&old).unwrap()).unwrap();
    assert_eq!(json["success"], true);
}
