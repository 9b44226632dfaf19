//! Just enough of the Dockerfile grammar to find the images a build reads: `FROM` lines (with
//! `${ARG}` resolved through global `ARG` defaults and the image's build args) and
//! `COPY --from=IMAGE`. Stages named with `AS` are not images. Also where a context's ignore
//! file is.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The ignore file podman reads for a build context: `.containerignore`, else `.dockerignore`.
pub fn context_ignore_file(context: &Path) -> Option<PathBuf> {
    [".containerignore", ".dockerignore"]
        .iter()
        .map(|name| context.join(name))
        .find(|p| p.is_file())
}

/// An image a Dockerfile reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseRef {
    /// As written, before variable expansion.
    pub written: String,
    /// After expansion; what podman will look up.
    pub resolved: String,
    /// The build arg, when the whole reference is one variable (`FROM ${BASE}`): podman 4.3
    /// does not redirect such a `FROM` with `--build-context`, but the arg can be overridden.
    pub via_arg: Option<String>,
    /// The instruction in the file.
    pub span: Range<usize>,
}

/// One instruction, continuation lines joined.
struct Instruction {
    keyword: String,
    rest: String,
    span: Range<usize>,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let escape = text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("escape="))
        .and_then(|e| e.trim().chars().next())
        .unwrap_or('\\');
    let mut out = Vec::new();
    let mut current: Option<(String, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let trimmed = body.trim_start();
        if trimmed.starts_with('#') || (current.is_none() && trimmed.is_empty()) {
            continue;
        }
        let (piece, continues) = match body.trim_end().strip_suffix(escape) {
            Some(p) => (p, true),
            None => (body, false),
        };
        let (acc, begin) = current.get_or_insert_with(|| (String::new(), start));
        acc.push_str(piece);
        acc.push(' ');
        if !continues {
            let begin = *begin;
            let (acc, _) = current.take().expect("set above");
            let acc = acc.trim();
            let (keyword, rest) = acc.split_once(char::is_whitespace).unwrap_or((acc, ""));
            out.push(Instruction {
                keyword: keyword.to_ascii_uppercase(),
                rest: rest.trim().to_string(),
                span: begin..start + body.len(),
            });
        }
    }
    out
}

/// `NAME=value` pairs (or a bare `NAME`) of an `ARG` line, quotes removed.
fn arg_pairs(rest: &str) -> Vec<(String, Option<String>)> {
    shlex::split(rest)
        .unwrap_or_default()
        .into_iter()
        .map(|word| match word.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (word, None),
        })
        .collect()
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alt}`; unknown names become empty,
/// as in a Dockerfile.
fn expand(word: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = word.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        if word[i + 1..].starts_with('{') {
            let Some(close) = word[i..].find('}') else {
                out.push_str(&word[i..]);
                break;
            };
            let inner = &word[i + 2..i + close];
            let value = if let Some((name, default)) = inner.split_once(":-") {
                vars.get(name)
                    .filter(|v| !v.is_empty())
                    .cloned()
                    .unwrap_or_else(|| expand(default, vars))
            } else if let Some((name, alt)) = inner.split_once(":+") {
                if vars.get(name).is_some_and(|v| !v.is_empty()) {
                    expand(alt, vars)
                } else {
                    String::new()
                }
            } else {
                vars.get(inner).cloned().unwrap_or_default()
            };
            out.push_str(&value);
            while chars.peek().is_some_and(|(j, _)| *j <= i + close) {
                chars.next();
            }
        } else {
            let name: String = word[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                out.push('$');
                continue;
            }
            out.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
            for _ in 0..name.chars().count() {
                chars.next();
            }
        }
    }
    out
}

/// The single variable a word consists of (`$X`, `${X}`), if that is all it is.
fn sole_variable(word: &str) -> Option<String> {
    let name = word
        .strip_prefix("${")
        .and_then(|w| w.strip_suffix('}'))
        .or_else(|| word.strip_prefix('$'))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

/// A parsed Dockerfile: its instructions, read once and asked about for each platform.
pub struct Dockerfile {
    instructions: Vec<Instruction>,
}

impl Dockerfile {
    pub fn parse(text: &str) -> Self {
        Self {
            instructions: instructions(text),
        }
    }

    /// The images the file reads, given the build args mab passes (which win over `ARG`
    /// defaults). `platform_args` are the automatic `TARGETOS`/`TARGETARCH`/... values.
    pub fn base_images(
        &self,
        build_args: &BTreeMap<String, String>,
        platform_args: &BTreeMap<String, String>,
    ) -> Vec<BaseRef> {
        base_images(&self.instructions, build_args, platform_args)
    }
}

fn base_images(
    instructions: &[Instruction],
    build_args: &BTreeMap<String, String>,
    platform_args: &BTreeMap<String, String>,
) -> Vec<BaseRef> {
    let mut scope: BTreeMap<String, String> = platform_args.clone();
    let mut stages: Vec<String> = Vec::new();
    let mut seen_from = false;
    let mut out = Vec::new();
    let mut push =
        |written: &str, span: Range<usize>, scope: &BTreeMap<String, String>, stages: &[String]| {
            let resolved = expand(written, scope);
            let lower = resolved.to_ascii_lowercase();
            if resolved.is_empty()
                || lower == "scratch"
                || stages.contains(&lower)
                || resolved.chars().all(|c| c.is_ascii_digit())
            {
                return;
            }
            out.push(BaseRef {
                written: written.to_string(),
                resolved,
                via_arg: sole_variable(written),
                span,
            });
        };
    for ins in instructions {
        match ins.keyword.as_str() {
            // Only ARGs before the first FROM are in scope for FROM lines.
            "ARG" if !seen_from => {
                for (name, default) in arg_pairs(&ins.rest) {
                    let value = build_args
                        .get(&name)
                        .cloned()
                        .or_else(|| default.map(|d| expand(&d, &scope)))
                        .or_else(|| platform_args.get(&name).cloned());
                    if let Some(v) = value {
                        scope.insert(name, v);
                    }
                }
            }
            "FROM" => {
                seen_from = true;
                let words: Vec<&str> = ins
                    .rest
                    .split_whitespace()
                    .filter(|w| !w.starts_with("--"))
                    .collect();
                if let Some(image) = words.first() {
                    push(image, ins.span.clone(), &scope, &stages);
                }
                if let [_, kw, alias] = words[..]
                    && kw.eq_ignore_ascii_case("as")
                {
                    stages.push(alias.to_ascii_lowercase());
                }
            }
            "COPY" | "ADD" => {
                for word in ins
                    .rest
                    .split_whitespace()
                    .take_while(|w| w.starts_with("--"))
                {
                    if let Some(from) = word.strip_prefix("--from=") {
                        push(from, ins.span.clone(), &BTreeMap::new(), &stages);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolved(text: &str, build: &[(&str, &str)]) -> Vec<String> {
        Dockerfile::parse(text)
            .base_images(&args(build), &args(&[("TARGETARCH", "arm64")]))
            .into_iter()
            .map(|b| b.resolved)
            .collect()
    }

    #[test]
    fn literal_and_stages() {
        let df = "# syntax=docker/dockerfile:1\nFROM --platform=$BUILDPLATFORM golang:1.22 AS build\nRUN make\nFROM build AS test\nFROM scratch\nCOPY --from=build /x /x\nCOPY --from=ghcr.io/acme/tools:1 /t /t\n";
        assert_eq!(resolved(df, &[]), ["golang:1.22", "ghcr.io/acme/tools:1"]);
    }

    #[test]
    fn args_defaults_and_overrides() {
        let df = "ARG REGISTRY=ghcr.io/acme\nARG BASE=${REGISTRY}/base:1\nARG TAG\nFROM ${BASE}\nFROM $REGISTRY/other:${TAG:-2}\nFROM x-${TARGETARCH}\n";
        assert_eq!(
            resolved(df, &[]),
            ["ghcr.io/acme/base:1", "ghcr.io/acme/other:2", "x-arm64"]
        );
        assert_eq!(
            resolved(df, &[("BASE", "local/base:9"), ("TAG", "3")]),
            ["local/base:9", "ghcr.io/acme/other:3", "x-arm64"]
        );
        let refs = Dockerfile::parse(df).base_images(&BTreeMap::new(), &BTreeMap::new());
        assert_eq!(refs[0].via_arg.as_deref(), Some("BASE"));
        assert_eq!(refs[1].via_arg, None);
        assert_eq!(&df[refs[0].span.clone()], "FROM ${BASE}");
        // A build arg the Dockerfile does not declare is not in scope.
        assert_eq!(resolved("FROM a:${TAG:-2}\n", &[("TAG", "3")]), ["a:2"]);
    }

    #[test]
    fn continuations_comments_and_case() {
        let df = "from \\\n  alpine:3.20 \\\n  as base\n# from nothing\nFrom base\n";
        assert_eq!(resolved(df, &[]), ["alpine:3.20"]);
        let df = "# escape=`\nFROM `\n  busybox\n";
        assert_eq!(resolved(df, &[]), ["busybox"]);
    }

    #[test]
    fn arg_after_from_is_not_in_scope() {
        let df = "FROM a\nARG B=x\nFROM ${B}img\n";
        assert_eq!(resolved(df, &[]), ["a", "img"]);
    }
}
