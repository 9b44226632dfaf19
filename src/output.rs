//! The three ways `mab plan` prints a plan: text for people, JSON for tools, DOT for a picture.
//! Each writes straight to its destination: a plan of 4,000 builds is megabytes of text, and
//! building it in memory first cost more than computing the plan.

use std::io::{self, Write};

use crate::plan::Plan;

/// A command line a person can paste into a POSIX shell.
pub fn shell_line(argv: &[String]) -> String {
    // try_join refuses only NUL bytes, which an argument vector cannot carry anyway.
    shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn text(plan: &Plan, workdir_display: &str, out: &mut dyn Write) -> io::Result<()> {
    let builds = plan.builds.len();
    let manifests = plan.manifests.len();
    writeln!(
        out,
        "Plan for {}: {builds} build{}, {manifests} manifest list{} (podman runs in {workdir_display})",
        plan.config,
        plural(builds),
        plural(manifests),
    )?;
    for (n, b) in plan.builds.iter().enumerate() {
        write!(out, "\n[{}/{builds}] build {}", n + 1, b.id)?;
        if !b.depends_on.is_empty() {
            write!(out, " (after {})", b.depends_on.join(", "))?;
        }
        writeln!(out, "\n  {}", shell_line(&b.argv))?;
    }
    for m in &plan.manifests {
        let platforms: Vec<String> = m.platforms.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "\nmanifest {} [{}] (after {})",
            m.image,
            platforms.join(", "),
            m.depends_on.join(", ")
        )?;
        let verb = if m.push {
            "push"
        } else {
            "local only (push = false)"
        };
        for t in &m.tags {
            writeln!(out, "  {verb} {t}")?;
        }
    }
    Ok(())
}

pub fn json(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, plan)?;
    writeln!(out)
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

pub fn dot(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "digraph mab {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];"
    )?;
    for b in &plan.builds {
        let label = format!("{}\n{}", b.image, b.platform);
        writeln!(out, "  {} [label={}];", dot_quote(&b.id), dot_quote(&label))?;
        for d in &b.depends_on {
            writeln!(out, "  {} -> {};", dot_quote(d), dot_quote(&b.id))?;
        }
    }
    for m in &plan.manifests {
        let node = dot_quote(&format!("manifest:{}", m.image));
        let tags: Vec<String> = m.tags.iter().map(ToString::to_string).collect();
        let label = format!("{}\n{}", m.image, tags.join("\n"));
        writeln!(
            out,
            "  {node} [shape=ellipse, label={}];",
            dot_quote(&label)
        )?;
        for d in &m.depends_on {
            writeln!(out, "  {} -> {node};", dot_quote(d))?;
        }
    }
    writeln!(out, "}}")
}
