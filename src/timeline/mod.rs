//! Where the time of a run went: every job of the report (build, list assembly, push) as a bar
//! on its node's slot, the dependencies between them, the critical path (the chain of jobs
//! that decided when the run ended) and the bound no schedule beats, max(critical path,
//! work / slots). [`trace`] renders it as Chrome trace-event JSON, [`svg`] as a picture.

pub mod svg;
pub mod trace;

use std::collections::{BTreeSet, HashMap};

use crate::exec::events::Lane;
use crate::exec::{JobKind, Report};
use crate::plan::Plan;

/// One job of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    /// The build id, or the list's image.
    pub label: String,
    pub kind: JobKind,
    /// Its build node; `None`: this machine.
    pub node: Option<String>,
    pub lane: Lane,
    pub slot: usize,
    pub start_ms: u64,
    pub end_ms: u64,
}

impl Bar {
    pub fn ms(&self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }

    /// Where it ran, as a row: node, lane, slot.
    pub fn row(&self) -> (Option<&str>, Lane, usize) {
        (self.node.as_deref(), self.lane, self.slot)
    }
}

/// The jobs of a run, the dependencies between them, and its critical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub bars: Vec<Bar>,
    /// `(before, after)`: job `after` waited for job `before` (indexes in `bars`).
    pub edges: Vec<(usize, usize)>,
    /// The jobs of the critical path, first to last.
    pub critical: Vec<usize>,
}

impl Timeline {
    /// The timeline of `report`, a run of `plan`.
    pub fn of(report: &Report, plan: &Plan) -> Self {
        let mut bars = Vec::new();
        // Per build id, its job; per list image, its jobs in order.
        let mut build_bar: HashMap<&str, usize> = HashMap::new();
        for b in &report.builds {
            for j in &b.jobs {
                build_bar.insert(&b.id, bars.len());
                bars.push(Bar {
                    label: b.id.clone(),
                    kind: j.job,
                    node: j.place.node.clone(),
                    lane: j.place.lane,
                    slot: j.place.slot,
                    start_ms: j.start_ms,
                    end_ms: j.end_ms,
                });
            }
        }
        let mut list_bars: HashMap<&str, Vec<usize>> = HashMap::new();
        for m in &report.manifests {
            for j in &m.jobs {
                list_bars.entry(&m.image).or_default().push(bars.len());
                bars.push(Bar {
                    label: m.image.clone(),
                    kind: j.job,
                    node: j.place.node.clone(),
                    lane: j.place.lane,
                    slot: j.place.slot,
                    start_ms: j.start_ms,
                    end_ms: j.end_ms,
                });
            }
        }
        let mut edges = BTreeSet::new();
        for b in &plan.builds {
            let Some(&to) = build_bar.get(b.id.as_str()) else {
                continue;
            };
            for d in &b.depends_on {
                if let Some(&from) = build_bar.get(d.as_str()) {
                    edges.insert((from, to));
                }
            }
        }
        for m in &plan.manifests {
            let Some(jobs) = list_bars.get(m.image.as_str()) else {
                continue;
            };
            // A list's jobs run one after another.
            for w in jobs.windows(2) {
                edges.insert((w[0], w[1]));
            }
            // Each image joins the list in the first assembly job that starts after its build.
            for id in &m.depends_on {
                let Some(&from) = build_bar.get(id.as_str()) else {
                    continue;
                };
                let joined = jobs.iter().find(|&&j| {
                    bars[j].kind == JobKind::Assemble && bars[j].start_ms >= bars[from].end_ms
                });
                if let Some(&to) = joined {
                    edges.insert((from, to));
                }
            }
        }
        let edges: Vec<(usize, usize)> = edges.into_iter().collect();
        let critical = critical_path(&bars, &edges);
        Self {
            bars,
            edges,
            critical,
        }
    }

    /// When the last job ended.
    pub fn makespan_ms(&self) -> u64 {
        self.bars.iter().map(|b| b.end_ms).max().unwrap_or(0)
    }

    /// The time of the critical path's jobs.
    pub fn critical_ms(&self) -> u64 {
        self.critical.iter().map(|&i| self.bars[i].ms()).sum()
    }

    /// The time of every build, and the build slots they ran in.
    pub fn work(&self) -> (u64, usize) {
        let builds = self.bars.iter().filter(|b| b.lane == Lane::Builds);
        let slots: std::collections::HashSet<_> = builds.clone().map(Bar::row).collect();
        (builds.map(Bar::ms).sum(), slots.len().max(1))
    }

    /// The summary's last line: makespan, the critical path and the bound, which says whether
    /// more `--jobs` or a native node would help.
    pub fn line(&self) -> String {
        let s = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
        let (work, slots) = self.work();
        let per_slot = work / slots as u64;
        let path: Vec<String> = self
            .critical
            .iter()
            .map(|&i| {
                let b = &self.bars[i];
                match b.kind {
                    JobKind::Build => b.label.clone(),
                    JobKind::Assemble => format!("{} assemble", b.label),
                    JobKind::Push => format!("{} push", b.label),
                }
            })
            .collect();
        let bound = self.critical_ms().max(per_slot);
        format!(
            "makespan {}; critical path {} ({}); bound max(critical path {}, work {} / {slots} slot(s) = {}) = {}",
            s(self.makespan_ms()),
            s(self.critical_ms()),
            if path.is_empty() {
                "nothing ran".to_string()
            } else {
                path.join(" → ")
            },
            s(self.critical_ms()),
            s(work),
            s(per_slot),
            s(bound)
        )
    }
}

/// The longest chain of jobs, by their time, along the dependencies: no schedule ends
/// before it, whatever the slots. A job waits only for jobs that ended before it started, so
/// start order is an order of the dependencies.
fn critical_path(bars: &[Bar], edges: &[(usize, usize)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..bars.len()).collect();
    order.sort_by_key(|&i| (bars[i].start_ms, bars[i].end_ms, i));
    // Per job: the longest chain ending with it, and the job before it there.
    let mut longest = vec![0u64; bars.len()];
    let mut before: Vec<Option<usize>> = vec![None; bars.len()];
    for &i in &order {
        let best = edges
            .iter()
            .filter(|(_, to)| *to == i)
            .max_by_key(|(from, _)| (longest[*from], *from));
        longest[i] = bars[i].ms() + best.map_or(0, |(from, _)| longest[*from]);
        before[i] = best.map(|(from, _)| *from);
    }
    let Some(mut at) = (0..bars.len()).max_by_key(|&i| (longest[i], bars[i].end_ms, i)) else {
        return Vec::new();
    };
    let mut path = vec![at];
    while let Some(b) = before[at] {
        path.push(b);
        at = b;
    }
    path.reverse();
    path
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn bar(label: &str, kind: JobKind, slot: usize, start: u64, end: u64) -> Bar {
        Bar {
            label: label.into(),
            kind,
            node: None,
            lane: if kind == JobKind::Build {
                Lane::Builds
            } else {
                Lane::Lists
            },
            slot,
            start_ms: start,
            end_ms: end,
        }
    }

    pub(crate) fn sample() -> Timeline {
        let bars = vec![
            bar("base@linux-amd64", JobKind::Build, 0, 0, 1000),
            bar("base@linux-arm64", JobKind::Build, 1, 0, 5000),
            bar("app@linux-amd64", JobKind::Build, 0, 1000, 2000),
            bar("app@linux-arm64", JobKind::Build, 1, 5000, 9000),
            bar("app", JobKind::Assemble, 0, 9000, 9500),
            bar("app", JobKind::Push, 0, 9500, 10000),
        ];
        let edges = vec![(0, 2), (1, 3), (2, 4), (3, 4), (4, 5)];
        let critical = critical_path(&bars, &edges);
        Timeline {
            bars,
            edges,
            critical,
        }
    }

    #[test]
    fn the_critical_path_is_the_chain_that_ended_last() {
        let t = sample();
        assert_eq!(t.critical, [1, 3, 4, 5]);
        assert_eq!(t.critical_ms(), 10000);
        assert_eq!(t.work(), (11000, 2));
        assert_eq!(
            t.line(),
            "makespan 10.0s; critical path 10.0s (base@linux-arm64 → app@linux-arm64 → app assemble → app push); bound max(critical path 10.0s, work 11.0s / 2 slot(s) = 5.5s) = 10.0s"
        );
    }
}
