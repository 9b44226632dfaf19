//! The checked-in JSON schema is the one the code generates, and every shipped config obeys it.

use std::path::Path;

const SCHEMA: &str = "schema/multiarch.schema.json";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(root().join(SCHEMA)).unwrap()).unwrap()
}

fn as_json(toml_text: &str) -> serde_json::Value {
    toml::from_str(toml_text).expect("valid TOML")
}

#[test]
fn checked_in_schema_is_current() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mab"))
        .arg("schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).unwrap();
    let checked_in = std::fs::read_to_string(root().join(SCHEMA)).unwrap();
    assert!(
        generated == checked_in,
        "{SCHEMA} is stale: run `cargo run -- schema > {SCHEMA}`"
    );
}

#[test]
fn every_shipped_config_validates() {
    let validator = jsonschema::validator_for(&schema()).expect("the schema compiles");
    let configs: Vec<_> = walkdir::WalkDir::new(root().join("examples"))
        .into_iter()
        .map(|e| e.unwrap().into_path())
        .filter(|p| p.file_name().is_some_and(|n| n == "multiarch.toml"))
        .chain([root().join("multiarch.toml")])
        .collect();
    assert!(configs.len() >= 3, "found {configs:?}");
    for path in configs {
        let doc = as_json(&std::fs::read_to_string(&path).unwrap());
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "{} does not match the schema: {errors:?}",
            path.display()
        );
    }
}

#[test]
fn schema_rejects_what_mab_rejects() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    for bad in [
        "[images.api]\ncontxt = \".\"\n",
        "[defaults]\ntags = \"latest\"\n",
        "[images.api]\nmatrix = { go = [1] }\n",
        "[imagse.api]\n",
    ] {
        assert!(
            !validator.is_valid(&as_json(bad)),
            "schema should reject {bad:?}"
        );
    }
    assert!(validator.is_valid(&as_json(
        "[images.api]\nmatrix = { go = [\"1\", { name = \"x\", arg = \"y\" }] }\n"
    )));
}
