//! The files a run or merge writes besides its summary: the JSON report, the JUnit report, the
//! trace, timeline.svg in the run's directory, and what a CI reads.

use anyhow::Context;

use crate::error::Error;
use crate::exec;
use crate::settings::Outputs;

use super::{write_private, write_stdout};

/// Writes the report where asked (in a CI, always: in the run's directory by default, for the
/// outputs to point at), the JUnit report, the trace, timeline.svg in the run's directory, and
/// what the CI reads; returns the run's timeline.
pub(super) fn write(
    outputs: &Outputs,
    ci: &crate::ci::Ci,
    report: &exec::Report,
    plan: &crate::Plan,
) -> Result<crate::timeline::Timeline, Error> {
    let timeline = crate::timeline::Timeline::of(report, plan);
    let in_ci = *ci != crate::ci::Ci::None;
    let default = report.run_dir.join("report.json");
    let path = outputs
        .report
        .as_deref()
        .or(in_ci.then_some(default.as_path()));
    if let Some(file) = path {
        let json = serde_json::to_string_pretty(report).expect("a report serialises");
        write_private(file, (json + "\n").as_bytes())
            .with_context(|| format!("cannot write the report to {}", file.display()))?;
    }
    if let Some(file) = &outputs.junit {
        write_private(file, crate::ci::junit::junit(report).as_bytes())
            .with_context(|| format!("cannot write the JUnit report to {}", file.display()))?;
    }
    if let Some(file) = &outputs.trace {
        write_private(file, crate::timeline::trace::trace(&timeline).as_bytes())
            .with_context(|| format!("cannot write the trace to {}", file.display()))?;
    }
    // Under .mab, every write goes through the state directory.
    let svg = report
        .run_dir
        .strip_prefix(&plan.workdir)
        .map(|rel| rel.join("timeline.svg"));
    if let Ok(rel) = svg {
        crate::state::StateDir::open(&plan.workdir)
            .and_then(|state| state.write(&rel, crate::timeline::svg::svg(&timeline).as_bytes()))
            .with_context(|| format!("cannot write {}", rel.display()))?;
    }
    if let Some(file) = path.filter(|_| in_ci) {
        let line = timeline.line();
        let written = write_stdout(|out| crate::ci::after_run(ci, report, plan, file, &line, out));
        written.context("cannot write the CI's files")?;
    }
    Ok(timeline)
}
