//! Every class of bad config, run through the real binary: each must exit with code 2, print
//! nothing on stdout, and say what is wrong and where (snapshotted).

use crate::common;

use common::{Project, Test};

const HEAD: &str = r#"[defaults]
registry  = "ghcr.io/acme"
platforms = ["linux/amd64", "linux/arm64"]
tags      = ["{{ vars.version }}"]

[vars]
version = "1.4.2"
"#;

/// Writes `config` (and a `Dockerfile` unless `files` has one), runs `mab plan ARGS`, and checks
/// the exit code and the snapshot named `name`.
fn check(name: &str, config: &str, files: &[(&str, &str)], args: &[&str]) {
    let mut test = Test::new();
    if !config.is_empty() {
        test = test.file("multiarch.toml", config);
    }
    if !files.iter().any(|(f, _)| *f == "Dockerfile") {
        test = test.file("Dockerfile", "FROM scratch\n");
    }
    for (f, text) in files {
        test = test.file(f, text);
    }
    // A failed plan prints no plan.
    test.arg("plan")
        .args(args)
        .status(2)
        .stdout("")
        .snapshot(name)
        .run();
}

fn image(body: &str) -> String {
    format!("{HEAD}\n[images.api]\n{body}")
}

#[test]
fn syntax_unclosed_table() {
    check(
        "syntax_unclosed_table",
        &format!("{HEAD}\n[images.api\n"),
        &[],
        &[],
    );
}

#[test]
fn syntax_unquoted_platform() {
    check(
        "syntax_unquoted_platform",
        "[defaults]\nplatforms = [linux/amd64]\n",
        &[],
        &[],
    );
}

#[test]
fn syntax_duplicate_key() {
    check(
        "syntax_duplicate_key",
        "[defaults]\nregistry = \"a\"\nregistry = \"b\"\n",
        &[],
        &[],
    );
}

#[test]
fn unknown_top_level_table() {
    check(
        "unknown_top_level_table",
        &format!("{HEAD}\n[imagse.api]\n"),
        &[],
        &[],
    );
}

#[test]
fn unknown_image_key() {
    check("unknown_image_key", &image("contxt = \".\"\n"), &[], &[]);
}

#[test]
fn unknown_defaults_key() {
    check(
        "unknown_defaults_key",
        "[defaults]\nplatform = [\"linux/amd64\"]\n",
        &[],
        &[],
    );
}

#[test]
fn wrong_type_tags() {
    check("wrong_type_tags", &image("tags = \"latest\"\n"), &[], &[]);
}

#[test]
fn wrong_type_push() {
    check("wrong_type_push", &image("push = \"yes\"\n"), &[], &[]);
}

#[test]
fn invalid_registry_stall() {
    check(
        "invalid_registry_stall",
        &format!("[builder]\nregistry_stall = \"a minute\"\n\n{}", image("")),
        &[],
        &[],
    );
}

#[test]
fn builder_podman_is_the_machines_choice() {
    check(
        "builder_podman_is_the_machines_choice",
        &format!("{HEAD}\n[builder]\npodman = \"./evil\"\n\n[images.api]\n"),
        &[],
        &[],
    );
    check(
        "builder_global_args_are_the_machines_choice",
        &format!(
            "{HEAD}\n[builder]\nglobal_args = [\"--url\", \"ssh://elsewhere\"]\n\n[images.api]\n"
        ),
        &[],
        &[],
    );
    // And a run starts nothing: the program the config names never runs.
    let p = Project::new();
    p.file(
        "multiarch.toml",
        &format!("{HEAD}\n[builder]\npodman = \"./evil\"\n\n[images.api]\n"),
    );
    p.file("Dockerfile", "FROM scratch\n");
    p.file("evil", "#!/bin/sh\ntouch ran\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        p.path().join("evil"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let out = p.mab(&["run", "--no-push"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!p.path().join("ran").exists(), "the config's program ran");
}

#[test]
fn matrix_number_value() {
    check(
        "matrix_number_value",
        &image("matrix = { go = [1.20] }\n"),
        &[],
        &[],
    );
}

#[test]
fn invalid_platform_typo() {
    check(
        "invalid_platform_typo",
        &image("platforms = [\"linux/amd64\", \"linux/amd46\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn invalid_platform_too_many_parts() {
    check(
        "invalid_platform_too_many_parts",
        &image("platforms = [\"linux/arm/v7/extra\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn duplicate_platform_after_normalisation() {
    check(
        "duplicate_platform_after_normalisation",
        &image("platforms = [\"linux/arm64\", \"linux/aarch64\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn invalid_tag_after_rendering() {
    check(
        "invalid_tag_after_rendering",
        &image("tags = [\"{{ vars.version }} beta\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn shell_injection_in_tag() {
    check(
        "shell_injection_in_tag",
        &image("tags = [\"$(touch /tmp/pwned)\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn repository_uppercase() {
    check(
        "repository_uppercase",
        &image("repository = \"ghcr.io/Acme/api\"\n"),
        &[],
        &[],
    );
}

#[test]
fn repository_with_tag() {
    check(
        "repository_with_tag",
        &image("repository = \"ghcr.io/acme/api:1.0\"\n"),
        &[],
        &[],
    );
}

#[test]
fn repository_list_empty() {
    check(
        "repository_list_empty",
        &image("repository = []\n"),
        &[],
        &[],
    );
}

#[test]
fn full_reference_tag_without_tag() {
    check(
        "full_reference_tag_without_tag",
        &image("tags = [\"quay.io/acme/api\"]\n"),
        &[],
        &[],
    );
}

/// Two images that push one reference, one through its second repository, the other by a
/// tag written as a whole reference.
#[test]
fn full_reference_pushed_by_two_images() {
    check(
        "full_reference_pushed_by_two_images",
        &format!(
            "{HEAD}\n[images.api]\nrepository = [\"ghcr.io/acme/api\", \"quay.io/acme/api\"]\n\n[images.web]\ntags = [\"quay.io/acme/api:{{{{ vars.version }}}}\"]\n"
        ),
        &[],
        &[],
    );
}

/// A platform's tag that does not name the platform: both platforms would push it.
#[test]
fn per_platform_tag_pushed_by_two_platforms() {
    check(
        "per_platform_tag_pushed_by_two_platforms",
        &image(
            "\n[images.api.platform.\"linux/amd64\"]\ntags = [\"native-{{ vars.version }}\"]\n\n[images.api.platform.\"linux/arm64\"]\ntags = [\"native-{{ vars.version }}\"]\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn template_syntax_error() {
    check(
        "template_syntax_error",
        &image("tags = [\"{{ vars.version \"]\n"),
        &[],
        &[],
    );
}

#[test]
fn undefined_variable_with_suggestion() {
    check(
        "undefined_variable_with_suggestion",
        &image("tags = [\"{{ vars.verison }}\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn undefined_matrix_key() {
    check(
        "undefined_matrix_key",
        &image("matrix = { go = [\"1.22\"] }\nname = \"api-{{ matrix.goo }}\"\n"),
        &[],
        &[],
    );
}

#[test]
fn undefined_in_build_arg() {
    check(
        "undefined_in_build_arg",
        &image("args = { BASE = \"{{ images.bsae.repository }}\" }\n"),
        &[],
        &[],
    );
}

#[test]
fn tag_depends_on_platform() {
    check(
        "tag_depends_on_platform",
        &image("tags = [\"{{ vars.version }}-{{ platform.arch }}\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn env_variable_unset() {
    check(
        "env_variable_unset",
        &image("tags = [\"{{ env('MAB_TEST_SURELY_UNSET') }}\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn missing_context() {
    check(
        "missing_context",
        &image("context = \"services/nope\"\n"),
        &[],
        &[],
    );
}

#[test]
fn missing_dockerfile() {
    check(
        "missing_dockerfile",
        &image("dockerfile = \"Dockerfile.prod\"\n"),
        &[],
        &[],
    );
}

#[test]
fn unknown_dependency() {
    check(
        "unknown_dependency",
        &format!("{HEAD}\n[images.base]\n\n[images.api]\ndepends_on = [\"bsae\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn cycle_in_depends_on() {
    let config = format!(
        "{HEAD}\n[images.base]\ndepends_on = [\"api\"]\n\n[images.api]\ndepends_on = [\"tools\"]\n\n[images.tools]\ndepends_on = [\"base\"]\n"
    );
    check("cycle_in_depends_on", &config, &[], &[]);
}

#[test]
fn cycle_inferred_from_from_lines() {
    let config = format!("{HEAD}\n[images.a]\ncontext = \"a\"\n\n[images.b]\ncontext = \"b\"\n");
    check(
        "cycle_inferred_from_from_lines",
        &config,
        &[
            ("a/Dockerfile", "FROM ghcr.io/acme/b:1.4.2\n"),
            ("b/Dockerfile", "FROM ghcr.io/acme/a:1.4.2\n"),
        ],
        &[],
    );
}

#[test]
fn self_dependency() {
    check(
        "self_dependency",
        &image("depends_on = [\"api\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn platform_mismatch_inferred() {
    let config = format!(
        "{HEAD}\n[images.base]\ncontext = \"base\"\n\n[images.api]\ncontext = \"api\"\nplatforms = [\"linux/amd64\", \"linux/arm/v7\"]\n"
    );
    check(
        "platform_mismatch_inferred",
        &config,
        &[
            ("base/Dockerfile", "FROM scratch\n"),
            (
                "api/Dockerfile",
                "ARG BASE=ghcr.io/acme/base:1.4.2\nFROM ${BASE}\n",
            ),
        ],
        &[],
    );
}

#[test]
fn platform_mismatch_depends_on() {
    let config = format!(
        "{HEAD}\n[images.base]\nplatforms = [\"linux/amd64\"]\n\n[images.api]\ndepends_on = [\"base\"]\n"
    );
    check("platform_mismatch_depends_on", &config, &[], &[]);
}

#[test]
fn duplicate_instance_names() {
    check(
        "duplicate_instance_names",
        &image(
            "matrix = { go = [\"1.22\", \"1.23\"], os = [\"alpine\"] }\nname = \"api-{{ matrix.os }}\"\ntags = [\"{{ matrix.go }}\"]\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn duplicate_reference_across_images() {
    let config =
        format!("{HEAD}\n[images.api]\n\n[images.api2]\nrepository = \"ghcr.io/acme/api\"\n");
    check("duplicate_reference_across_images", &config, &[], &[]);
}

#[test]
fn duplicate_reference_in_matrix() {
    check(
        "duplicate_reference_in_matrix",
        &image("matrix = { go = [\"1.22\", \"1.23\"] }\n"),
        &[],
        &[],
    );
}

#[test]
fn exclude_unknown_key() {
    check(
        "exclude_unknown_key",
        &image("matrix = { go = [\"1.22\"] }\nexclude = [{ og = \"1.22\" }]\n"),
        &[],
        &[],
    );
}

#[test]
fn include_duplicates_matrix() {
    check(
        "include_duplicates_matrix",
        &image(
            "matrix = { go = [\"1.22\"] }\nname = \"api-{{ matrix.go }}\"\ninclude = [{ go = \"1.22\", platform = \"linux/arm64\" }]\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn matrix_table_without_name() {
    check(
        "matrix_table_without_name",
        &image("matrix = { base = [{ image = \"alpine\" }] }\n"),
        &[],
        &[],
    );
}

#[test]
fn invalid_instance_name() {
    check(
        "invalid_instance_name",
        &image("matrix = { go = [\"1.22\"] }\nname = \"API {{ matrix.go }}\"\n"),
        &[],
        &[],
    );
}

#[test]
fn no_platforms() {
    check(
        "no_platforms",
        "[defaults]\nregistry = \"ghcr.io/acme\"\ntags = [\"1\"]\n\n[images.api]\n",
        &[],
        &[],
    );
}

#[test]
fn no_repository() {
    check(
        "no_repository",
        "[defaults]\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n\n[images.api]\n",
        &[],
        &[],
    );
}

#[test]
fn override_for_unbuilt_platform() {
    check(
        "override_for_unbuilt_platform",
        &image("\n[images.api.platform.\"linux/s390x\"]\nargs = { X = \"1\" }\n"),
        &[],
        &[],
    );
}

#[test]
fn selection_matches_nothing() {
    check("selection_matches_nothing", &image(""), &[], &["apu"]);
}

#[test]
fn selected_platform_not_built() {
    check(
        "selected_platform_not_built",
        &image(""),
        &[],
        &["--platform", "linux/s390x"],
    );
}

#[test]
fn bad_platform_argument() {
    check(
        "bad_platform_argument",
        &image(""),
        &[],
        &["--platform", "linux/amd46"],
    );
}

#[test]
fn bad_var_argument() {
    check("bad_var_argument", &image(""), &[], &["--var", "version"]);
}

#[test]
fn no_config_found() {
    check("no_config_found", "", &[], &[]);
}

#[test]
fn config_file_missing() {
    check(
        "config_file_missing",
        "",
        &[],
        &["-f", "nope/multiarch.toml"],
    );
}

#[test]
fn build_arg_that_looks_like_a_secret() {
    check(
        "build_arg_that_looks_like_a_secret",
        &image("args = { NPM_TOKEN = \"{{ env('NPM_TOKEN', 'x') }}\" }\n"),
        &[],
        &[],
    );
}

#[test]
fn secret_without_a_source() {
    check(
        "secret_without_a_source",
        &image("secrets = { npmrc = { } }\n"),
        &[],
        &[],
    );
}

#[test]
fn secret_file_missing() {
    check(
        "secret_file_missing",
        &image("secrets = { npmrc = { file = \"no-such-npmrc\" } }\n"),
        &[],
        &[],
    );
}

// The repository's boundary: /etc is outside every scratch project.

#[test]
fn context_outside_the_repository() {
    check(
        "context_outside_the_repository",
        &image("context = \"/etc\"\n"),
        &[],
        &[],
    );
}

#[test]
fn dockerfile_outside_the_repository() {
    check(
        "dockerfile_outside_the_repository",
        &image("dockerfile = \"/etc/passwd\"\n"),
        &[],
        &[],
    );
}

#[test]
fn named_context_outside_the_repository() {
    check(
        "named_context_outside_the_repository",
        &image("contexts = { loot = \"/etc\" }\n"),
        &[],
        &[],
    );
}

#[test]
fn secret_file_outside_the_repository() {
    check(
        "secret_file_outside_the_repository",
        &image("secrets = { pw = { file = \"/etc/passwd\" } }\n"),
        &[],
        &[],
    );
}

#[test]
fn watch_outside_the_repository() {
    check(
        "watch_outside_the_repository",
        &image("watch = [\"/etc/**/*.conf\"]\n"),
        &[],
        &[],
    );
}

#[test]
fn node_key_outside_the_repository() {
    check(
        "node_key_outside_the_repository",
        &format!(
            "[nodes.arm]\nurl = \"ssh://ci@arm.test/run/podman/podman.sock\"\nidentity = \"/etc/ssh/id\"\nplatforms = [\"linux/arm64\"]\n\n{}",
            image("")
        ),
        &[],
        &[],
    );
}

#[test]
fn template_env_of_a_credential() {
    check(
        "template_env_of_a_credential",
        &image("labels = { x = \"{{ env('SOME_TOKEN') }}\" }\n"),
        &[],
        &[],
    );
}

const STAGES: &str = "FROM scratch AS build\nFROM scratch AS release\n";

#[test]
fn target_names_no_stage() {
    check(
        "target_names_no_stage",
        &image("target = \"relase\"\n"),
        &[("Dockerfile", STAGES)],
        &[],
    );
}

#[test]
fn target_template_renders_to_no_stage() {
    check(
        "target_template_renders_to_no_stage",
        &format!(
            "{HEAD}flavour = \"debug\"\n\n[images.api]\ntarget = \"{{{{ vars.flavour }}}}\"\n"
        ),
        &[("Dockerfile", STAGES)],
        &[],
    );
}

#[test]
fn context_names_an_unknown_image() {
    check(
        "context_names_an_unknown_image",
        &image("contexts = { base_image = \"target:bsae\" }\n[images.base]\n"),
        &[("Dockerfile", "FROM base_image\n")],
        &[],
    );
}

#[test]
fn context_directory_missing() {
    check(
        "context_directory_missing",
        &image("contexts = { src = \"../no-such-dir\" }\n"),
        &[],
        &[],
    );
}

/// The build-platform stage and the target stage both read the toolchain: one
/// `--build-context` cannot name two images.
#[test]
fn one_reference_on_two_platforms() {
    check(
        "one_reference_on_two_platforms",
        &format!("{HEAD}\n[images.tool]\ncontext = \"tool\"\n\n[images.app]\ncontext = \"app\"\n"),
        &[
            ("tool/Dockerfile", "FROM scratch\n"),
            (
                "app/Dockerfile",
                "FROM --platform=$BUILDPLATFORM ghcr.io/acme/tool:1.4.2 AS build\nRUN make\nFROM ghcr.io/acme/tool:1.4.2\nCOPY --from=build /out /out\n",
            ),
        ],
        &[],
    );
}

#[test]
fn build_platform_stage_of_a_target_only_dependency() {
    // The toolchain is built for arm64 only, and the machine that builds is not arm64.
    check(
        "build_platform_stage_of_a_target_only_dependency",
        &format!(
            "{HEAD}\n[images.tool]\ncontext = \"tool\"\nplatforms = [\"linux/arm64\"]\n\n[images.app]\ncontext = \"app\"\n"
        ),
        &[
            ("tool/Dockerfile", "FROM scratch\n"),
            (
                "app/Dockerfile",
                "FROM --platform=$BUILDPLATFORM ghcr.io/acme/tool:1.4.2 AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /out\n",
            ),
        ],
        &[],
    );
}

#[test]
fn dockerfile_heredoc_never_closed() {
    check(
        "dockerfile_heredoc_never_closed",
        &image(""),
        &[("Dockerfile", "FROM scratch\nCOPY <<EOF /x\nnever closed\n")],
        &[],
    );
}

#[test]
fn from_argument_expands_to_nothing() {
    check(
        "from_argument_expands_to_nothing",
        &image(""),
        &[("Dockerfile", "ARG BASE\nFROM ${BASE}\n")],
        &[],
    );
}

/// `mab run` in a project `setup` gives a state directory mab did not make: refused (exit 2)
/// before anything runs, and snapshotted as `name`.
fn check_state(name: &str, setup: impl Fn(&Project)) {
    let p = Project::new();
    p.file("multiarch.toml", &image(""));
    p.file("Dockerfile", "FROM scratch\n");
    setup(&p);
    p.test()
        .args(["run", "--no-push"])
        .status(2)
        .snapshot(name)
        .run();
}

#[test]
fn state_tracked_by_git() {
    check_state("state_tracked_by_git", |p| {
        p.file(".mab/hash-cache", "forged\n");
        p.git_commit("ship mab's state");
    });
}

#[test]
fn state_link() {
    check_state("state_link", |p| {
        std::fs::create_dir(p.path().join(".mab")).unwrap();
        std::os::unix::fs::symlink("../../.bashrc", p.path().join(".mab/.gitignore")).unwrap();
    });
}

#[test]
fn dockerfile_without_from() {
    check(
        "dockerfile_without_from",
        &image(""),
        &[("Dockerfile", "# syntax=docker/dockerfile:1\nRUN make\n")],
        &[],
    );
}

#[test]
fn dockerfile_instruction_before_first_from() {
    check(
        "dockerfile_instruction_before_first_from",
        &image(""),
        &[(
            "Dockerfile",
            "# escape=\\\nARG BASE=scratch\n# a comment\nENV X=1\nFROM ${BASE}\n",
        )],
        &[],
    );
}

#[test]
fn dockerfile_unknown_instruction_with_suggestion() {
    check(
        "dockerfile_unknown_instruction_with_suggestion",
        &image(""),
        &[("Dockerfile", "FROM scratch\nCOPPY . /src\n")],
        &[],
    );
}

#[test]
fn dockerfile_unknown_instruction() {
    check(
        "dockerfile_unknown_instruction",
        &image(""),
        &[("Dockerfile", "FROM scratch\nX foo\n")],
        &[],
    );
}

/// `${A:-${A:-...x}}`, `levels` deep.
fn nested_default(levels: usize) -> String {
    format!("{}x{}", "${A:-".repeat(levels), "}".repeat(levels))
}

#[test]
fn dockerfile_variables_nested_too_deep() {
    check(
        "dockerfile_variables_nested_too_deep",
        &image(""),
        &[(
            "Dockerfile",
            &format!("FROM scratch\nARG A={}\n", nested_default(101)),
        )],
        &[],
    );
}

#[test]
fn platforms_empty() {
    check("platforms_empty", &image("platforms = []\n"), &[], &[]);
}

#[test]
fn platforms_empty_from_defaults() {
    check(
        "platforms_empty_from_defaults",
        "[defaults]\nregistry = \"ghcr.io/acme\"\nplatforms = []\ntags = [\"1\"]\n\n[images.api]\nmatrix = { go = [\"1.22\"] }\n",
        &[],
        &[],
    );
}

#[test]
fn platforms_empty_from_monorepo_root() {
    check(
        "platforms_empty_from_monorepo_root",
        "[defaults]\nregistry = \"ghcr.io/acme\"\nplatforms = []\ntags = [\"1\"]\n",
        &[
            ("svc/multiarch.toml", "[images.svc]\n"),
            ("svc/Dockerfile", "FROM scratch\n"),
        ],
        &[],
    );
}

/// Nesting as deep as a file can hold, in each language mab reads, through the real binary (a
/// test thread's stack is not the binary's): a clean error with its code and place, exit 2,
/// never a stack overflow (exit 134) or a segfault.
#[test]
fn nesting_of_any_depth_is_an_error_never_a_crash() {
    let n = 20_000;
    let base = "[images.api]\nrepository = \"ghcr.io/acme/api\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n";
    let cases = [
        (
            "ARG default (a 120 kB line)",
            base.to_string(),
            format!("ARG A={}\nFROM scratch\n", nested_default(n)),
            "mab::dockerfile",
            "Dockerfile:1:1",
        ),
        (
            "FROM word",
            base.to_string(),
            format!("FROM {}\n", nested_default(n)),
            "mab::dockerfile",
            "Dockerfile:1:1",
        ),
        (
            "template expression",
            format!(
                "{base}labels = {{ x = \"{{{{ {}1{} }}}}\" }}\n",
                "(".repeat(n),
                ")".repeat(n)
            ),
            "FROM scratch\n".to_string(),
            "mab::template",
            "multiarch.toml:5:",
        ),
        (
            "template blocks",
            format!(
                "{base}labels = {{ x = \"{}1{}\" }}\n",
                "{% if true %}".repeat(n),
                "{% endif %}".repeat(n)
            ),
            "FROM scratch\n".to_string(),
            "mab::template",
            "multiarch.toml:5:",
        ),
        (
            "recursive macro",
            format!(
                "{base}labels = {{ x = \"{{% macro f() %}}{{{{ f() }}}}{{% endmacro %}}{{{{ f() }}}}\" }}\n"
            ),
            "FROM scratch\n".to_string(),
            "mab::template",
            "multiarch.toml:5:",
        ),
        (
            "TOML arrays",
            format!("{base}\n[vars]\nx = {}{}\n", "[".repeat(n), "]".repeat(n)),
            "FROM scratch\n".to_string(),
            "mab::syntax",
            "multiarch.toml:7:",
        ),
        (
            "TOML inline tables",
            format!(
                "{base}\n[vars]\nx = {}1{}\n",
                "{ a = ".repeat(n),
                " }".repeat(n)
            ),
            "FROM scratch\n".to_string(),
            "mab::syntax",
            "multiarch.toml:7:",
        ),
    ];
    for (what, config, dockerfile, code, place) in cases {
        let p = Project::new();
        p.file("multiarch.toml", &config)
            .file("Dockerfile", &dockerfile);
        let out = p.mab(&["plan"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {}",
            &stderr[..stderr.len().min(2000)]
        );
        assert!(
            stderr.starts_with(code),
            "{what}: {}",
            &stderr[..stderr.len().min(2000)]
        );
        assert!(
            stderr.contains(&format!("[{place}")),
            "{what}: no place {place}"
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: a failed plan prints no plan"
        );
        // The error quotes the long line cut short, not whole.
        assert!(
            stderr.len() < 8_000,
            "{what}: {} bytes of error",
            stderr.len()
        );
    }
    // A JSON-form instruction is podman's to read: mab does not parse it, so any nesting plans.
    let p = Project::new();
    p.file("multiarch.toml", base).file(
        "Dockerfile",
        &format!("FROM scratch\nCMD {}{}\n", "[".repeat(n), "]".repeat(n)),
    );
    let out = p.mab(&["plan"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// bake-style chains (issue 18): a cycle names its path, at the entry that closes it.
#[test]
fn inherits_cycle() {
    check(
        "inherits_cycle",
        &format!(
            "{HEAD}\n[images._common]\nabstract = true\ninherits = [\"buildkit\"]\n\n[images.mainline]\ninherits = [\"_common\"]\n\n[images.buildkit]\ninherits = [\"mainline\"]\n"
        ),
        &[],
        &[],
    );
}

#[test]
fn inherits_unknown_name() {
    check(
        "inherits_unknown_name",
        &format!(
            "{HEAD}\n[images._common]\nabstract = true\nargs = {{ A = \"1\" }}\n\n[images.api]\ninherits = [\"_comon\"]\n"
        ),
        &[],
        &[],
    );
}

/// Every tag of an instance rendered empty: pushed nowhere, so an error (not with push = false).
#[test]
fn every_tag_renders_empty() {
    check(
        "every_tag_renders_empty",
        &image(
            "matrix = { alpine = [\"3.22\", \"3.23\"] }\ntags = [\"{% if matrix.alpine == '3.23' %}latest{% endif %}\", \"{{ '' }}\"]\n",
        ),
        &[],
        &[],
    );
}

#[test]
fn abstract_image_with_a_matrix() {
    check(
        "abstract_image_with_a_matrix",
        &format!(
            "{HEAD}\n[images._common]\nabstract = true\nmatrix = {{ go = [\"1.22\"] }}\n\n[images.api]\ninherits = [\"_common\"]\n"
        ),
        &[],
        &[],
    );
}

// Templated paths (issue 18): each build's rendering is checked like a written path, and the
// error points at the template.

/// cross-rs's `Dockerfile.{{ matrix.target }}` for a target that has no Dockerfile.
#[test]
fn templated_dockerfile_missing() {
    check(
        "templated_dockerfile_missing",
        &image(
            "matrix = { target = [\"aarch64\", \"mips\"] }\ndockerfile = \"Dockerfile.{{ matrix.target }}\"\n",
        ),
        &[("Dockerfile.aarch64", "FROM scratch\n")],
        &[],
    );
}

/// home-assistant's `python/{{ matrix.python }}` for a version without a directory.
#[test]
fn templated_context_missing() {
    check(
        "templated_context_missing",
        &image(
            "matrix = { python = [\"3.12\", \"3.13\"] }\ncontext = \"python/{{ matrix.python }}\"\n",
        ),
        &[("python/3.12/Dockerfile", "FROM scratch\n")],
        &[],
    );
}

/// A platform's own Dockerfile that is not there.
#[test]
fn platform_dockerfile_missing() {
    check(
        "platform_dockerfile_missing",
        &image("[images.api.platform.\"linux/arm64\"]\ndockerfile = \"Dockerfile.aarch64\"\n"),
        &[],
        &[],
    );
}

/// A rendered path that leads out of the repository: refused where the template is.
#[test]
fn templated_context_outside_the_repository() {
    check(
        "templated_context_outside_the_repository",
        &image(
            "matrix = { dir = [{ name = \"app\", path = \"app\" }, { name = \"loot\", path = \"../../../../../../../../etc\" }] }\ncontext = \"{{ matrix.dir.path }}\"\n",
        ),
        &[("app/Dockerfile", "FROM scratch\n")],
        &[],
    );
}

/// A platform's own Dockerfile, rendered, outside the repository.
#[test]
fn platform_dockerfile_outside_the_repository() {
    check(
        "platform_dockerfile_outside_the_repository",
        &image("[images.api.platform.\"linux/arm64\"]\ndockerfile = \"{{ '/etc' }}/passwd\"\n"),
        &[],
        &[],
    );
}

/// A platform taken `from` a registry image is not built: build settings for it are an error,
/// at the setting.
#[test]
fn external_platform_with_args() {
    check(
        "external_platform_with_args",
        &image(
            "[images.api.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/api:1.4.2-arm64\"\nargs = { GOARCH = \"arm64\" }\n",
        ),
        &[],
        &[],
    );
}

/// `dockerfile` in the override of a platform taken `from` a registry image is refused.
#[test]
fn external_platform_with_dockerfile() {
    check(
        "external_platform_with_dockerfile",
        &image(
            "[images.api.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/api:1.4.2-arm64\"\ndockerfile = \"Dockerfile.aarch64\"\n",
        ),
        &[("Dockerfile.aarch64", "FROM scratch\n")],
        &[],
    );
}

/// `target` set by an inherited image's override still conflicts with the heir's `from`.
#[test]
fn external_platform_with_inherited_target() {
    check(
        "external_platform_with_inherited_target",
        &format!(
            "{HEAD}\n[images._common]\nabstract = true\n[images._common.platform.\"linux/arm64\"]\ntarget = \"arm\"\n\n[images.api]\ninherits = [\"_common\"]\n[images.api.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/api:1.4.2-arm64\"\n"
        ),
        &[],
        &[],
    );
}

/// `from` reads a registry: another transport, or a reference with no tag or digest, is refused.
#[test]
fn external_platform_not_a_registry_reference() {
    check(
        "external_platform_not_docker",
        &image("[images.api.platform.\"linux/arm64\"]\nfrom = \"oci-archive:api-arm64.tar\"\n"),
        &[],
        &[],
    );
    check(
        "external_platform_no_tag",
        &image("[images.api.platform.\"linux/arm64\"]\nfrom = \"docker://ghcr.io/acme/api\"\n"),
        &[],
        &[],
    );
}
