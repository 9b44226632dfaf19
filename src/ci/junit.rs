//! The JUnit XML report of a run (`--junit FILE`), as GitLab and Jenkins read it: one test
//! case per build, one per list's push and one per tag's read-back (its verification), each
//! failure with its reason and the log's tail. Pure: the report in, XML text out.

use std::fmt::Write;

use crate::exec::{Report, Status, TagStatus};

/// Text for XML 1.0: the five special characters escaped, and characters XML cannot carry
/// (terminal escapes in a build log) replaced.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One test case: passed, failed (reason and log tail) or skipped.
struct Case {
    class: String,
    name: String,
    ms: u64,
    outcome: Outcome,
}

enum Outcome {
    Passed,
    Failed { reason: String, tail: String },
    Skipped(String),
}

impl Case {
    fn of(class: &str, name: &str, ms: u64, status: &Status, tail: Option<&str>) -> Self {
        let outcome = match status {
            Status::Failed { reason } => Outcome::Failed {
                reason: reason.clone(),
                tail: tail.unwrap_or_default().to_string(),
            },
            Status::Skipped { reason } => Outcome::Skipped(reason.clone()),
            Status::NotStarted => Outcome::Skipped("not run: the run stopped first".into()),
            _ => Outcome::Passed,
        };
        Self {
            class: class.into(),
            name: name.into(),
            ms,
            outcome,
        }
    }

    fn xml(&self, out: &mut String) {
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&self.class),
            escape(&self.name),
            self.ms as f64 / 1000.0
        );
        match &self.outcome {
            Outcome::Passed => out.push_str("/>\n"),
            Outcome::Skipped(why) => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(why)
                );
            }
            Outcome::Failed { reason, tail } => {
                let _ = writeln!(
                    out,
                    ">\n      <failure type=\"failed\" message=\"{}\">{}</failure>\n    </testcase>",
                    escape(reason),
                    escape(tail)
                );
            }
        }
    }
}

fn cases(report: &Report) -> Vec<Case> {
    let mut cases: Vec<Case> = report
        .builds
        .iter()
        .map(|b| {
            Case::of(
                "build",
                &b.id,
                b.duration_ms,
                &b.status,
                b.log_tail.as_deref(),
            )
        })
        .collect();
    for m in &report.manifests {
        cases.push(Case::of(
            "push",
            &m.image,
            m.duration_ms,
            &m.status,
            m.log_tail.as_deref(),
        ));
        for t in &m.tags {
            let outcome = match &t.status {
                TagStatus::Failed { reason } | TagStatus::NotRestored { reason } => {
                    Outcome::Failed {
                        reason: reason.clone(),
                        tail: m.log_tail.clone().unwrap_or_default(),
                    }
                }
                _ => Outcome::Passed,
            };
            cases.push(Case {
                class: "verify".into(),
                name: format!("{} {}", m.image, t.reference),
                ms: 0,
                outcome,
            });
        }
    }
    cases
}

/// The report as one `<testsuite>` named `mab` in a `<testsuites>`.
pub fn junit(report: &Report) -> String {
    let cases = cases(report);
    let failures = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Failed { .. }))
        .count();
    let skipped = cases
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Skipped(_)))
        .count();
    let ms: u64 = cases.iter().map(|c| c.ms).sum();
    let time = format!("{:.3}", ms as f64 / 1000.0);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"mab\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time}\">",
        cases.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"mab run {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time}\">",
        escape(&report.run_id),
        cases.len()
    );
    for c in &cases {
        c.xml(&mut out);
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_with_terminal_escapes_is_still_xml() {
        assert_eq!(
            escape("a\x1b[1m<b>&\"'"),
            "a\u{FFFD}[1m&lt;b&gt;&amp;&quot;&apos;"
        );
    }
}
