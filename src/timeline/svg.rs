//! The timeline as a picture (`timeline.svg` in every run's directory): a lane per slot of each
//! node, one bar per build and list job, the critical path outlined in red, a time axis, and
//! the summary line. Labels are 12 px text, cut to their bar. Pure: the timeline in, SVG out.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::exec::JobKind;
use crate::exec::events::Lane;

use super::Timeline;

const LABELS: f64 = 230.0;
const CHART: f64 = 1000.0;
const TOP: f64 = 50.0;
const ROW: f64 = 30.0;
const BAR: f64 = 22.0;
/// About the width of a character of 12 px sans-serif, to cut labels to their bars.
const CHAR: f64 = 6.8;

/// Text and attribute values for XML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn colour(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Build => "#4e79a7",
        JobKind::Assemble => "#59a14f",
        JobKind::Push => "#f28e2b",
    }
}

/// A tick interval of 1, 2 or 5 times a power of ten, for about 8 ticks.
fn tick_ms(span_ms: u64) -> u64 {
    let raw = (span_ms as f64 / 8.0).max(1.0);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    step as u64
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The picture of `timeline`.
pub fn svg(timeline: &Timeline) -> String {
    let mut rows: BTreeMap<(Option<&str>, u8, usize), usize> = BTreeMap::new();
    for b in &timeline.bars {
        let lane = match b.lane {
            Lane::Builds => 0,
            Lane::Lists => 1,
        };
        rows.insert((b.node.as_deref(), lane, b.slot), 0);
    }
    for (n, row) in rows.values_mut().enumerate() {
        *row = n;
    }
    let span = timeline.makespan_ms().max(1);
    let x = |ms: u64| LABELS + CHART * ms as f64 / span as f64;
    let height = TOP + ROW * rows.len() as f64 + 60.0;
    let width = LABELS + CHART + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r##"<text x="10" y="20" font-size="14" font-weight="bold">mab run: where the time went</text><text x="{}" y="20" fill="#555" text-anchor="end"><tspan fill="#4e79a7">■</tspan> build  <tspan fill="#59a14f">■</tspan> list assembly  <tspan fill="#f28e2b">■</tspan> push  <tspan fill="none" stroke="#d62728" stroke-width="2">□</tspan> critical path</text>"##,
        LABELS + CHART
    );
    // Time axis and grid.
    let step = tick_ms(span);
    let bottom = TOP + ROW * rows.len() as f64;
    let mut t = 0;
    while t <= span {
        let _ = writeln!(
            out,
            r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{bottom}" stroke="#ddd"/><text x="{0:.1}" y="{2}" text-anchor="middle" fill="#555">{3}</text>"##,
            x(t),
            TOP - 8.0,
            TOP - 12.0,
            seconds(t)
        );
        t += step;
    }
    for ((node, lane, slot), row) in &rows {
        let y = TOP + ROW * *row as f64;
        let name = format!(
            "{} · {} {}",
            node.unwrap_or("this machine"),
            if *lane == 0 {
                "build slot"
            } else {
                "list slot"
            },
            slot
        );
        let _ = writeln!(
            out,
            r##"<text x="10" y="{:.1}" fill="#333">{}</text><line x1="{LABELS}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#eee"/>"##,
            y + ROW / 2.0 + 4.0,
            escape(&name),
            y + ROW,
            LABELS + CHART,
            y + ROW
        );
    }
    let critical: std::collections::HashSet<usize> = timeline.critical.iter().copied().collect();
    for (i, b) in timeline.bars.iter().enumerate() {
        let lane = match b.lane {
            Lane::Builds => 0,
            Lane::Lists => 1,
        };
        let row = rows[&(b.node.as_deref(), lane, b.slot)];
        let (x0, x1) = (x(b.start_ms), x(b.end_ms));
        let w = (x1 - x0).max(1.0);
        let y = TOP + ROW * row as f64 + (ROW - BAR) / 2.0;
        let kind = match b.kind {
            JobKind::Build => "build",
            JobKind::Assemble => "assemble",
            JobKind::Push => "push",
        };
        let stroke = if critical.contains(&i) {
            r##" stroke="#d62728" stroke-width="3""##
        } else {
            ""
        };
        let fits = ((w - 8.0) / CHAR).floor().max(0.0) as usize;
        let text: String = if b.label.chars().count() <= fits {
            b.label.clone()
        } else if fits >= 2 {
            b.label.chars().take(fits - 1).collect::<String>() + "…"
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            r#"<g class="job"><title>{} {kind}: {} ({}–{})</title><rect class="bar {kind}" x="{x0:.1}" y="{y:.1}" width="{w:.1}" height="{BAR}" rx="3" fill="{}"{stroke}/><text x="{:.1}" y="{:.1}" fill="white">{}</text></g>"#,
            escape(&b.label),
            seconds(b.ms()),
            seconds(b.start_ms),
            seconds(b.end_ms),
            colour(b.kind),
            x0 + 4.0,
            y + BAR / 2.0 + 4.0,
            escape(&text)
        );
    }
    // The summary line, broken before the bound so that it fits the width.
    let line = timeline.line();
    let (first, second) = line
        .split_once("; bound")
        .map_or((line.as_str(), None), |(a, b)| (a, Some(b)));
    let _ = writeln!(
        out,
        r##"<text x="10" y="{:.1}" fill="#333">{}</text>"##,
        bottom + 25.0,
        escape(first)
    );
    if let Some(rest) = second {
        let _ = writeln!(
            out,
            r##"<text x="10" y="{:.1}" fill="#333">bound{}</text>"##,
            bottom + 43.0,
            escape(rest)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_job_and_the_critical_ones_outlined() {
        let t = super::super::tests::sample();
        let s = svg(&t);
        assert_eq!(s.matches(r#"<rect class="bar "#).count(), t.bars.len());
        assert_eq!(
            s.matches(r##"stroke="#d62728" stroke-width="3""##).count(),
            t.critical.len()
        );
        assert_eq!(tick_ms(10_000), 2000);
        assert_eq!(tick_ms(95_000), 20_000);
    }
}
