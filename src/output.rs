//! The three ways `mab plan` prints a plan: text for people, JSON for tools, DOT for a picture.

use std::fmt::Write as _;

use crate::plan::Plan;

/// A command line a person can paste into a POSIX shell.
pub fn shell_line(argv: &[String]) -> String {
    // try_join refuses only NUL bytes, which an argument vector cannot carry anyway.
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

pub fn text(plan: &Plan, workdir_display: &str) -> String {
    let mut out = String::new();
    let builds = plan.builds.len();
    let manifests = plan.manifests.len();
    let _ = writeln!(
        out,
        "Plan for {}: {builds} build{}, {manifests} manifest list{} (podman runs in {workdir_display})",
        plan.config,
        if builds == 1 { "" } else { "s" },
        if manifests == 1 { "" } else { "s" },
    );
    for (n, b) in plan.builds.iter().enumerate() {
        let _ = write!(out, "\n[{}/{builds}] build {}", n + 1, b.id);
        if !b.depends_on.is_empty() {
            let _ = write!(out, " (after {})", b.depends_on.join(", "));
        }
        let _ = writeln!(out, "\n  {}", shell_line(&b.argv));
    }
    for m in &plan.manifests {
        let platforms: Vec<String> = m.platforms.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "\nmanifest {} [{}] (after {})",
            m.image,
            platforms.join(", "),
            m.depends_on.join(", ")
        );
        let verb = if m.push {
            "push"
        } else {
            "local only (push = false)"
        };
        for t in &m.tags {
            let _ = writeln!(out, "  {verb} {t}");
        }
    }
    out
}

pub fn json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("a plan serialises");
    s.push('\n');
    s
}

fn dot_quote(s: &str) -> String {
    // Newlines become DOT's `\n` escape, which centres each line of a label.
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

pub fn dot(plan: &Plan) -> String {
    let mut out =
        String::from("digraph mab {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for b in &plan.builds {
        let _ = writeln!(
            out,
            "  {} [label={}];",
            dot_quote(&b.id),
            dot_quote(&format!("{}\n{}", b.image, b.platform))
        );
        for d in &b.depends_on {
            let _ = writeln!(out, "  {} -> {};", dot_quote(d), dot_quote(&b.id));
        }
    }
    for m in &plan.manifests {
        let node = format!("manifest:{}", m.image);
        let tags: Vec<String> = m.tags.iter().map(ToString::to_string).collect();
        let label = format!("{}\n{}", m.image, tags.join("\n"));
        let _ = writeln!(
            out,
            "  {} [shape=ellipse, label={}];",
            dot_quote(&node),
            dot_quote(&label)
        );
        for d in &m.depends_on {
            let _ = writeln!(out, "  {} -> {};", dot_quote(d), dot_quote(&node));
        }
    }
    out.push_str("}\n");
    out
}
