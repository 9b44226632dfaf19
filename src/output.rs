//! The three ways `mab plan` prints a plan: text for people, JSON for tools, DOT for a picture.
//! Each writes to its destination as it goes: a plan of 4,000 builds is megabytes of text, and
//! building it in memory first cost more than computing the plan.

use std::io::{self, Write};

use crate::error::join;
use crate::plan::{Plan, Step};

mod json;
pub use json::json;

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn text(plan: &Plan, workdir_display: &str, out: &mut dyn Write) -> io::Result<()> {
    let builds = plan.builds.len();
    let manifests = plan.manifests.len();
    let files = match plan.files.as_slice() {
        [one] => one.clone(),
        all => format!("{} config files", all.len()),
    };
    writeln!(
        out,
        "Plan for {files}: {builds} build{}, {manifests} manifest list{} (podman runs in {workdir_display})",
        plural(builds),
        plural(manifests),
    )?;
    if let Some(changed) = &plan.changed_since {
        if changed.selected.is_empty() {
            writeln!(
                out,
                "\nNo image is touched by the changes since {}.",
                changed.revision
            )?;
        } else {
            writeln!(out, "\nSelected by the changes since {}:", changed.revision)?;
            let width = changed
                .selected
                .iter()
                .map(|s| s.image.len())
                .max()
                .unwrap_or(0);
            for s in &changed.selected {
                writeln!(out, "  {:width$}  {}", s.image, s.reason)?;
            }
        }
    }
    if let Some(unchanged) = &plan.unchanged {
        if unchanged.is_empty() {
            writeln!(
                out,
                "\nThe registry holds none of these images with the same inputs."
            )?;
        } else {
            writeln!(
                out,
                "\nUnchanged (the registry holds their inputs; not built):"
            )?;
            for u in unchanged {
                write!(out, "  {}  {}", u.image, u.index)?;
                if !u.new_tags.is_empty() {
                    write!(out, "  (adds {})", u.new_tags.join(", "))?;
                }
                writeln!(out)?;
            }
        }
    }
    for (n, b) in plan.builds.iter().enumerate() {
        write!(out, "\n[{}/{builds}] build {}", n + 1, b.id)?;
        if let Some(node) = &b.node {
            write!(out, " on node {node}")?;
        }
        if !b.depends_on.is_empty() {
            write!(out, " (after {})", b.depends_on.join(", "))?;
        }
        writeln!(out, "\n  {}", b.argv.shell_line())?;
        if let Some(p) = &b.publish {
            writeln!(
                out,
                "  {}  # for the lists and other nodes",
                p.push.shell_line()
            )?;
            writeln!(out, "  {}  # its digest", p.verify.shell_line())?;
        }
        if let Some(copy) = &b.dockerfile {
            for (line, why) in [
                (
                    &copy.declare,
                    "  # FROM lines read them: podman 4.3 leaves them empty there without an ARG",
                ),
                (&copy.label, ""),
            ] {
                if let Some(line) = line {
                    writeln!(
                        out,
                        "  # {} is {} with, after line {}: {}{why}",
                        copy.path,
                        copy.base.display(),
                        line.after_line,
                        line.instruction
                    )?;
                }
            }
        }
    }
    for m in &plan.manifests {
        write!(out, "\nmanifest {} [{}]", m.image, join(&m.platforms))?;
        if m.depends_on.is_empty() {
            writeln!(out, " (unchanged: new tags only)")?;
        } else {
            writeln!(out, " (after {})", m.depends_on.join(", "))?;
            writeln!(
                out,
                "  {}  # if an earlier run left one",
                m.remove_stale
                    .as_ref()
                    .map(|c| c.shell_line())
                    .unwrap_or_default()
            )?;
        }
        // External platforms join the list right after `create`, as a run adds them.
        if let Some(create) = &m.assemble.create {
            writeln!(out, "  {}", create.shell_line())?;
        }
        for e in &m.external {
            let how = match (&e.digest, e.from.digest()) {
                (Some(_), Some(_)) | (None, _) => "from a registry image, not built".to_string(),
                (Some(d), None) => format!("{} resolved to {d}", e.from),
            };
            writeln!(out, "  {}  # {}: {how}", e.add.shell_line(), e.platform)?;
        }
        for add in &m.assemble.adds {
            writeln!(out, "  {}", add.command.shell_line())?;
        }
        if !m.push {
            writeln!(
                out,
                "  (push = false: the list stays local; its tags would be {})",
                join(&m.tags)
            )?;
            continue;
        }
        publication(&m.publish, out)?;
    }
    Ok(())
}

/// A list's publication steps, then the restores `--atomic` runs after a failure.
fn publication(steps: &[Step], out: &mut dyn Write) -> io::Result<()> {
    for step in steps {
        match step {
            Step::Record { argv, .. } => {
                writeln!(out, "  {}  # what it holds now", argv.shell_line())?
            }
            Step::Held { tag, digest } => writeln!(
                out,
                "  # {tag} holds {} (read by the registry check)",
                digest.as_deref().unwrap_or("nothing")
            )?,
            Step::Push { argv, verify, .. } | Step::Copy { argv, verify, .. } => {
                writeln!(out, "  {}", argv.shell_line())?;
                writeln!(out, "  {}  # verify", verify.shell_line())?;
            }
            Step::Sign(s) => {
                let what = match s.platform {
                    None => "the index".to_string(),
                    Some(_) => s.what(),
                };
                writeln!(
                    out,
                    "  {}  # sign {what}, unless its signature tag holds one of the key",
                    s.push.shell_line()
                )?;
            }
            Step::Attach(a) => writeln!(
                out,
                "  # attach to its {} image {} what it lacks",
                a.platform, a.digest
            )?,
        }
    }
    for restore in steps.iter().filter_map(Step::restore) {
        writeln!(
            out,
            "  {}  # --atomic: puts it back after a failure",
            restore.shell_line()
        )?;
    }
    Ok(())
}

/// The plan's warnings, for stderr: each with its fix.
pub fn warnings(plan: &Plan) -> String {
    plan.warnings
        .iter()
        .map(|w| format!("warning: {}\n  help: {}\n", w.message, w.help))
        .collect()
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
    // With build nodes, one cluster of builds per node.
    for n in &plan.nodes {
        writeln!(
            out,
            "  subgraph {} {{\n    label={};",
            dot_quote(&format!("cluster_{}", n.name)),
            dot_quote(&format!("node {} ({})", n.name, n.address))
        )?;
        for b in plan
            .builds
            .iter()
            .filter(|b| b.node.as_ref() == Some(&n.name))
        {
            writeln!(out, "    {};", dot_quote(&b.id))?;
        }
        writeln!(out, "  }}")?;
    }
    for b in &plan.builds {
        let label = format!("{}\n{}", b.image, b.platform);
        writeln!(out, "  {} [label={}];", dot_quote(&b.id), dot_quote(&label))?;
        for d in &b.depends_on {
            writeln!(out, "  {} -> {};", dot_quote(d), dot_quote(&b.id))?;
        }
    }
    for m in &plan.manifests {
        let list = dot_quote(&format!("manifest:{}", m.image));
        let tags: Vec<String> = m.tags.iter().map(ToString::to_string).collect();
        let label = format!("{}\n{}", m.image, tags.join("\n"));
        writeln!(
            out,
            "  {list} [shape=ellipse, label={}];",
            dot_quote(&label)
        )?;
        for d in &m.depends_on {
            writeln!(out, "  {} -> {list};", dot_quote(d))?;
        }
    }
    writeln!(out, "}}")
}

/// The table printed at the end of `mab run`: every build and manifest list with its status,
/// then the log tail of each failure.
/// `table`: false prints only failures and the verdict (`mab run -q`).
pub fn summary(
    report: &crate::exec::Report,
    plan: &Plan,
    table: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    use crate::exec::Status;
    if table {
        status_table(report, plan, out)?;
    }
    let failures = report
        .builds
        .iter()
        .filter_map(|b| match &b.status {
            Status::Failed { reason } => Some((b.id.clone(), reason, &b.log, &b.log_tail)),
            _ => None,
        })
        .chain(report.manifests.iter().filter_map(|m| match &m.status {
            Status::Failed { reason } => Some((
                format!("{} manifest list", m.image),
                reason,
                &m.log,
                &m.log_tail,
            )),
            _ => None,
        }));
    for (what, reason, log, tail) in failures {
        writeln!(out, "\nFAILED {what}: {reason}\n  log: {}", log.display())?;
        for line in tail.as_deref().unwrap_or_default().lines() {
            writeln!(out, "  | {line}")?;
        }
    }
    let built = report
        .builds
        .iter()
        .filter(|b| b.status == Status::Built)
        .count();
    let pushed = report
        .manifests
        .iter()
        .filter(|m| m.status == Status::Pushed)
        .count();
    let unchanged = |n: usize| {
        if n == 0 {
            String::new()
        } else {
            format!(" ({n} unchanged)")
        }
    };
    let unchanged_builds = unchanged(
        report
            .builds
            .iter()
            .filter(|b| b.status == Status::Unchanged)
            .count(),
    );
    let unchanged_lists = unchanged(
        report
            .manifests
            .iter()
            .filter(|m| m.status == Status::Unchanged)
            .count(),
    );
    let verdict = match report.interrupted {
        Some(_) => "INTERRUPTED",
        None if report.success => "ok",
        None => "FAILED",
    };
    writeln!(
        out,
        "\n{verdict}: {built}/{} builds{unchanged_builds}, {pushed}/{} manifest lists pushed{unchanged_lists} (run {}, logs in {})",
        report.builds.len(),
        report.manifests.len(),
        report.run_id,
        report.run_dir.display()
    )
}

/// Every build and manifest list with its status.
fn status_table(report: &crate::exec::Report, plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    use crate::exec::Status;
    let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
    let width = report
        .builds
        .iter()
        .map(|b| b.image.len())
        .chain(report.manifests.iter().map(|m| m.image.len()))
        .max()
        .unwrap_or(0)
        .max(13);
    writeln!(
        out,
        "\n{:<width$}  {:<14}  {:<9}  {:>7}  image id",
        "image", "platform", "status", "time"
    )?;
    for b in &report.builds {
        let id = match (&b.image_id, &b.published) {
            (Some(id), _) => short(id),
            // An unchanged build's image is the registry's.
            (None, Some(published)) => {
                format!("{} (registry)", short(published.digest.digest()))
            }
            (None, None) => String::new(),
        };
        writeln!(
            out,
            "{:<width$}  {:<14}  {:<9}  {:>7}  {id}",
            b.image,
            b.platform.to_string(),
            b.status.word(),
            secs(b.duration_ms)
        )?;
    }
    writeln!(out, "\n{:<width$}  {:<9}  tags", "manifest list", "status")?;
    for (m, planned) in report.manifests.iter().zip(&plan.manifests) {
        let word = m.status.word();
        if m.tags.is_empty() {
            let tags = match &m.status {
                Status::Assembled => format!("{} (local)", m.list),
                Status::Failed { reason } | Status::Skipped { reason } => reason.clone(),
                _ => join(&planned.tags),
            };
            writeln!(out, "{:<width$}  {word:<9}  {tags}", m.image)?;
            continue;
        }
        let tag_width = m.tags.iter().map(|t| t.reference.len()).max().unwrap_or(0);
        for (n, t) in m.tags.iter().enumerate() {
            let (image, word) = if n == 0 {
                (m.image.as_str(), word)
            } else {
                ("", "")
            };
            writeln!(
                out,
                "{image:<width$}  {word:<9}  {:<tag_width$}  {:<12}  {}",
                t.reference,
                t.status.word(),
                tag_detail(t)
            )?;
        }
    }
    Ok(())
}

/// What a tag held and holds, in short digests.
fn tag_detail(t: &crate::exec::TagReport) -> String {
    use crate::exec::{Held, TagStatus};
    let before = match &t.before {
        Some(Held::Digest(d)) => short(d),
        Some(Held::Nothing) => "(new tag)".into(),
        None => "(not read)".into(),
    };
    let index = t.digest.as_deref().map_or_else(|| "?".into(), short);
    match &t.status {
        TagStatus::Moved => format!("{before} -> {index}"),
        TagStatus::Unchanged => index,
        TagStatus::Failed { .. } => {
            let held = match &t.before {
                Some(Held::Digest(d)) => format!("still {}", short(d)),
                Some(Held::Nothing) => "still no such tag".into(),
                None => "not moved".into(),
            };
            match &t.digest {
                Some(d) => format!("{held}, not {}", short(d)),
                None => held,
            }
        }
        TagStatus::Restored => format!("back at {before} (was moved to {index})"),
        TagStatus::NotRestored { reason } => format!("at {index}: {reason}"),
    }
}

/// The first 12 hex digits of a digest or image id.
fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}
