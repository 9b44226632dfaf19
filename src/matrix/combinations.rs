//! The combinations of an image: its matrix × its platforms, less `exclude`, plus `include`.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::config::{ImageDef, MatrixValue, parse_platform};
use crate::error::{ConfigError, ErrorKind, Source, suggest};
use crate::platform::Platform;

use super::Combination;

pub(super) fn matrix_error(source: &Source, span: Range<usize>, message: String) -> ConfigError {
    source.error(ErrorKind::Matrix, span, message)
}

/// Checks the keys of an `exclude`/`include` entry; returns its platform, if it names one.
fn entry_platform(
    source: &Source,
    def: &ImageDef,
    entry: &toml::Spanned<BTreeMap<String, MatrixValue>>,
    what: &str,
) -> Result<Option<Platform>, ConfigError> {
    let keys: Vec<&str> = def
        .matrix
        .keys()
        .map(String::as_str)
        .chain(["platform"])
        .collect();
    for k in entry.get_ref().keys() {
        if !keys.contains(&k.as_str()) {
            return Err(source
                .error(
                    ErrorKind::UnknownKey,
                    entry.span(),
                    format!(
                        "{what} entry of image `{}` uses `{k}`, which is not a matrix key",
                        def.key
                    ),
                )
                .with_help(
                    suggest(k, keys.iter().copied())
                        .unwrap_or_else(|| format!("its keys are: {}", keys.join(", "))),
                ));
        }
    }
    match entry.get_ref().get("platform") {
        None => Ok(None),
        Some(MatrixValue::String(s)) => {
            let spanned = toml::Spanned::new(entry.span(), s.clone());
            parse_platform(source, &spanned).map(Some)
        }
        Some(other) => Err(matrix_error(
            source,
            entry.span(),
            format!("`platform` in {what} must be a string, not {other}"),
        )),
    }
}

/// The combinations of one image: the product of its matrix × its platforms, less `exclude`,
/// plus `include`. Combinations left with no platform are dropped.
pub fn combinations(def: &ImageDef) -> Result<Vec<Combination>, ConfigError> {
    let source = &def.file.source;
    let matrix = &def.matrix;
    if matrix.contains_key("platform") {
        return Err(matrix_error(
            source,
            def.matrix_span.clone(),
            format!(
                "image `{}`: `platform` is reserved; list platforms in `platforms`",
                def.key
            ),
        ));
    }
    let excludes = def
        .exclude
        .iter()
        .map(|e| Ok((e, entry_platform(source, def, e, "exclude")?)))
        .collect::<Result<Vec<_>, ConfigError>>()?;

    let excluded = |values: &BTreeMap<String, MatrixValue>, platform: &Platform| {
        excludes.iter().any(|(entry, p)| {
            p.as_ref().is_none_or(|p| p == platform)
                && entry
                    .get_ref()
                    .iter()
                    .filter(|(k, _)| *k != "platform")
                    .all(|(k, pattern)| values[k].matches(pattern))
        })
    };
    let mut out: Vec<Combination> = product(matrix)
        .into_iter()
        .map(|values| {
            let platforms = def
                .platforms
                .iter()
                .filter(|p| !excluded(&values, p))
                .cloned()
                .collect();
            Combination { values, platforms }
        })
        .collect();

    for entry in &def.include {
        include(def, entry, &mut out)?;
    }
    out.retain(|c| !c.platforms.is_empty());
    Ok(out)
}

/// The cartesian product of the matrix, in key order then value order: deterministic.
fn product(matrix: &BTreeMap<String, Vec<MatrixValue>>) -> Vec<BTreeMap<String, MatrixValue>> {
    let mut product = vec![BTreeMap::new()];
    for (key, values) in matrix {
        product = product
            .into_iter()
            .flat_map(|partial| {
                values.iter().map(move |v| {
                    let mut next = partial.clone();
                    next.insert(key.clone(), v.clone());
                    next
                })
            })
            .collect();
    }
    product
}

/// Adds an `include` entry: its platforms (or the image's) to the combination of its values,
/// a new one if the matrix has none.
fn include(
    def: &ImageDef,
    entry: &toml::Spanned<BTreeMap<String, MatrixValue>>,
    out: &mut Vec<Combination>,
) -> Result<(), ConfigError> {
    let (source, matrix) = (&def.file.source, &def.matrix);
    let platform = entry_platform(source, def, entry, "include")?;
    let mut values = entry.get_ref().clone();
    values.remove("platform");
    if let Some(missing) = matrix.keys().find(|k| !values.contains_key(*k)) {
        return Err(matrix_error(
            source,
            entry.span(),
            format!(
                "include entry of image `{}` does not set matrix key `{missing}`",
                def.key
            ),
        )
        .with_help(
            "an include entry gives a value for every matrix key (and optionally `platform`)",
        ));
    }
    let platforms = platform.map_or_else(|| def.platforms.clone(), |p| vec![p]);
    let at = match out.iter().position(|c| c.values == values) {
        Some(i) => i,
        None => {
            out.push(Combination {
                values,
                platforms: Vec::new(),
            });
            out.len() - 1
        }
    };
    for p in platforms {
        if out[at].platforms.contains(&p) {
            return Err(matrix_error(
                source,
                entry.span(),
                format!(
                    "include entry of image `{}` adds `{p}`, which the matrix already builds",
                    def.key
                ),
            ));
        }
        out[at].platforms.push(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(toml_text: &str) -> ImageDef {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let path = dir.path().join("multiarch.toml");
        std::fs::write(&path, toml_text).unwrap();
        let config = crate::config::load(&path, &[], &Default::default()).unwrap();
        config.images.into_iter().next().unwrap()
    }

    const HEAD: &str = "[defaults]\nregistry = \"r.io/a\"\ntags = [\"t\"]\nplatforms = [\"linux/amd64\", \"linux/arm64\", \"linux/arm/v7\"]\n[images.api]\n";

    fn count(c: &[Combination]) -> usize {
        c.iter().map(|c| c.platforms.len()).sum()
    }

    #[test]
    fn product_counts() {
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1.22\", \"1.23\"], os = [\"alpine\", \"debian\", \"ubi\"] }}\n"
        ));
        let c = combinations(&d).unwrap();
        assert_eq!(c.len(), 6);
        assert_eq!(count(&c), 18);
        assert_eq!(c[0].values["go"], MatrixValue::String("1.22".into()));
        assert_eq!(c[0].values["os"], MatrixValue::String("alpine".into()));
        assert_eq!(c[1].values["os"], MatrixValue::String("debian".into()));
    }

    #[test]
    fn no_matrix_is_one_instance_and_empty_list_is_none() {
        let d = def(HEAD);
        assert_eq!(combinations(&d).unwrap().len(), 1);
        let d = def(&format!("{HEAD}matrix = {{ go = [] }}\n"));
        assert!(combinations(&d).unwrap().is_empty());
    }

    #[test]
    fn exclude_and_include() {
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1.22\", \"1.23\"] }}\n\
             exclude = [{{ go = \"1.22\", platform = \"linux/arm/v7\" }}, {{ go = \"1.23\", platform = \"armhf\" }}]\n\
             include = [{{ go = \"1.24\" }}, {{ go = \"1.22\", platform = \"linux/s390x\" }}]\n"
        ));
        let c = combinations(&d).unwrap();
        // 2 × 3 − 2 excluded + 3 (1.24 on all) + 1 (s390x)
        assert_eq!(count(&c), 6 - 2 + 3 + 1);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0].platforms
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64", "linux/s390x"]
        );
    }

    #[test]
    fn exclude_whole_combination_and_table_values() {
        let d = def(&format!(
            "{HEAD}matrix = {{ base = [{{ name = \"alpine\", image = \"alpine:3\" }}, {{ name = \"deb\", image = \"debian:12\" }}] }}\n\
             exclude = [{{ base = \"deb\" }}]\n"
        ));
        let c = combinations(&d).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].values["base"].short_name(), Some("alpine"));
    }

    #[test]
    fn bad_entries() {
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1\"] }}\nexclude = [{{ og = \"1\" }}]\n"
        ));
        let e = combinations(&d).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnknownKey);
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1\"] }}\ninclude = [{{ go = \"1\" }}]\n"
        ));
        assert_eq!(combinations(&d).unwrap_err().kind(), ErrorKind::Matrix);
        let d = def(&format!(
            "{HEAD}matrix = {{ go = [\"1\"], x = [\"a\"] }}\ninclude = [{{ go = \"2\" }}]\n"
        ));
        assert!(
            combinations(&d)
                .unwrap_err()
                .message()
                .contains("does not set matrix key `x`")
        );
    }
}
