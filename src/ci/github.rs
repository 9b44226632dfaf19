//! GitHub Actions' words for a run: the job summary (Markdown), workflow-command annotations,
//! step outputs and log groups. Pure functions from the report to text; `ci::mod` writes them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::Path;

use crate::exec::{Report, Status, TagStatus};
use crate::plan::Plan;

use super::Annotation;

/// GitHub shows at most this many annotations of one kind per step; more are dropped silently.
pub const ANNOTATIONS_PER_KIND: usize = 10;

/// A step summary larger than 1 MiB is refused whole: the summary stays below this.
pub const SUMMARY_LIMIT: usize = 1024 * 1024 - 4096;

/// A workflow command's message: `%`, CR and LF escaped (actions/toolkit `escapeData`).
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as a message, and `:` and `,` too
/// (actions/toolkit `escapeProperty`).
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error` line: `file=PATH,line=L,col=C,title=mab::KIND::MESSAGE`, PATH relative to
/// `workspace` when it is inside it.
pub fn annotation(a: &Annotation, workspace: Option<&Path>) -> String {
    let mut props = Vec::new();
    if let Some(file) = &a.file {
        let shown = workspace
            .and_then(|w| file.strip_prefix(w).ok())
            .unwrap_or(file);
        props.push(format!(
            "file={}",
            escape_property(&shown.to_string_lossy())
        ));
    }
    if let Some(line) = a.line {
        props.push(format!("line={line}"));
    }
    if let Some(col) = a.column {
        props.push(format!("col={col}"));
    }
    props.push(format!(
        "title={}",
        escape_property(&format!("mab::{}", a.kind))
    ));
    format!("::error {}::{}", props.join(","), escape_data(&a.message))
}

/// The annotations, at most [`ANNOTATIONS_PER_KIND`] of each kind, then one plain line per
/// kind saying how many more were left out.
pub fn annotations(all: &[Annotation], workspace: Option<&Path>) -> String {
    let mut out = String::new();
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for a in all {
        let n = count.entry(&a.kind).or_default();
        *n += 1;
        if *n <= ANNOTATIONS_PER_KIND {
            out.push_str(&annotation(a, workspace));
            out.push('\n');
        }
    }
    for (kind, n) in count {
        if n > ANNOTATIONS_PER_KIND {
            let _ = writeln!(
                out,
                "mab: {} more mab::{kind} error(s) not annotated (GitHub shows {ANNOTATIONS_PER_KIND} of a kind): see the summary and the report",
                n - ANNOTATIONS_PER_KIND
            );
        }
    }
    out
}

/// A failed build's log tail in a collapsed group of the step's log.
pub fn group(title: &str, body: &str) -> String {
    // A line of the body that is a workflow command would run as one.
    let body: String = body
        .lines()
        .map(|l| match l.strip_prefix("::") {
            Some(_) => format!(" {l}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    format!("::group::{}\n{body}::endgroup::\n", escape_data(title))
}

/// `KEY<<DELIMITER` ... `DELIMITER`: a multiline value of `$GITHUB_OUTPUT`, with a delimiter
/// the value does not hold.
pub fn output(key: &str, value: &str) -> String {
    let mut n = 0;
    let delimiter = loop {
        let d = format!("MAB_EOF_{n}");
        if !value.lines().any(|l| l == d) {
            break d;
        }
        n += 1;
    };
    format!("{key}<<{delimiter}\n{value}\n{delimiter}\n")
}

/// The `digests` output: per reference a list was pushed to, its index digest and each
/// platform's image digest.
pub fn digests_json(report: &Report) -> String {
    let mut out = serde_json::Map::new();
    for m in &report.manifests {
        let platforms: serde_json::Map<String, serde_json::Value> = m
            .images
            .iter()
            .map(|(p, d)| (p.to_string(), d.clone().into()))
            .collect();
        for t in m
            .tags
            .iter()
            .filter(|t| !matches!(t.status, TagStatus::Failed { .. }))
        {
            let Some(digest) = &t.digest else { continue };
            out.insert(
                t.reference.clone(),
                serde_json::json!({ "digest": digest, "platforms": platforms }),
            );
        }
    }
    serde_json::Value::Object(out).to_string()
}

/// `$GITHUB_OUTPUT` lines: `digests` and `report`.
pub fn outputs(report: &Report, report_path: &Path) -> String {
    output("digests", &digests_json(report)) + &output("report", &report_path.to_string_lossy())
}

fn seconds(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// `|`, and line breaks, would end a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The job summary: each list (image, tags, index digest, platforms, status), each build
/// (platform, status, time, unchanged), totals, then `tail` (the critical path and the bound);
/// cut below GitHub's limit with a pointer to the report.
pub fn summary(report: &Report, plan: &Plan, tail: &str, report_path: &Path) -> String {
    let platforms: HashMap<&str, String> = plan
        .manifests
        .iter()
        .map(|m| {
            let p: Vec<String> = m.platforms.iter().map(ToString::to_string).collect();
            (m.image.as_str(), p.join(", "))
        })
        .collect();
    let verdict = if report.success {
        "succeeded"
    } else {
        "FAILED"
    };
    let mut out = format!("## mab run {verdict}\n\n");
    if !report.manifests.is_empty() {
        out.push_str(
            "| Image | Tags | Index digest | Platforms | Status |\n|---|---|---|---|---|\n",
        );
        for m in &report.manifests {
            let tags: Vec<String> = m
                .tags
                .iter()
                .map(|t| format!("`{}`", t.reference))
                .collect();
            let index = m
                .tags
                .iter()
                .find_map(|t| t.digest.as_deref())
                .unwrap_or("");
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | {} |",
                cell(&m.image),
                cell(&tags.join("<br>")),
                index,
                platforms.get(m.image.as_str()).map_or("", String::as_str),
                cell(m.status.word())
            );
        }
        out.push('\n');
    }
    let mut rows = String::new();
    rows.push_str("| Build | Platform | Status | Time | Unchanged |\n|---|---|---|---|---|\n");
    for b in &report.builds {
        let unchanged = if b.status == Status::Unchanged {
            "yes"
        } else {
            ""
        };
        let _ = writeln!(
            rows,
            "| {} | {} | {} | {} | {unchanged} |",
            cell(&b.image),
            b.platform,
            cell(b.status.word()),
            seconds(b.duration_ms)
        );
    }
    let count = |f: fn(&Status) -> bool| report.builds.iter().filter(|b| f(&b.status)).count();
    let totals = format!(
        "**Totals:** {} build(s): {} built, {} unchanged, {} failed; {} list(s), {} pushed.\n",
        report.builds.len(),
        count(|s| *s == Status::Built),
        count(|s| *s == Status::Unchanged),
        count(|s| matches!(s, Status::Failed { .. })),
        report.manifests.len(),
        report
            .manifests
            .iter()
            .filter(|m| m.status == Status::Pushed)
            .count(),
    );
    let end = format!("\n{totals}\n{tail}\n");
    let pointer = format!(
        "\n_Cut here to stay below GitHub's 1 MiB summary limit: every build is in the report, `{}`._\n",
        report_path.display()
    );
    if out.len() + rows.len() + end.len() <= SUMMARY_LIMIT {
        out.push_str(&rows);
    } else {
        // Whole rows only, as many as fit beside the rest.
        let room = SUMMARY_LIMIT.saturating_sub(out.len() + end.len() + pointer.len());
        let mut used = 0;
        for line in rows.lines() {
            if used + line.len() + 1 > room {
                break;
            }
            out.push_str(line);
            out.push('\n');
            used += line.len() + 1;
        }
        out.push_str(&pointer);
    }
    out.push_str(&end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_and_messages_are_escaped_as_the_toolkit_does() {
        let a = Annotation {
            kind: "syntax".into(),
            file: Some("/w/dir, a:b/multiarch.toml".into()),
            line: Some(3),
            column: Some(7),
            message: "100% wrong\nsee: here".into(),
        };
        assert_eq!(
            annotation(&a, Some(Path::new("/w"))),
            "::error file=dir%2C a%3Ab/multiarch.toml,line=3,col=7,title=mab%3A%3Asyntax::100%25 wrong%0Asee: here"
        );
    }

    #[test]
    fn ten_of_a_kind_then_one_line() {
        let a = |kind: &str, n: usize| Annotation {
            kind: kind.into(),
            file: None,
            line: None,
            column: None,
            message: format!("failure {n}"),
        };
        let mut all: Vec<Annotation> = (0..13).map(|n| a("build", n)).collect();
        all.push(a("syntax", 0));
        let out = annotations(&all, None);
        assert_eq!(out.lines().filter(|l| l.starts_with("::error")).count(), 11);
        assert!(out.contains("mab: 3 more mab::build error(s)"), "{out}");
        assert!(!out.contains("failure 10"), "{out}");
    }

    #[test]
    fn an_output_delimiter_is_not_in_the_value() {
        let out = output("k", "a\nMAB_EOF_0\nb");
        assert!(out.starts_with("k<<MAB_EOF_1\n"), "{out}");
        assert!(out.ends_with("\nMAB_EOF_1\n"), "{out}");
    }

    #[test]
    fn a_log_line_that_looks_like_a_command_is_not_one() {
        let g = group("app@linux-arm64", "ok\n::error::evil");
        assert_eq!(
            g,
            "::group::app@linux-arm64\nok\n ::error::evil\n::endgroup::\n"
        );
    }
}
