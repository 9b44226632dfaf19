//! The timeline as Chrome trace-event JSON (`--trace FILE`), which chrome://tracing and
//! Perfetto open: one complete (`X`) event per job, a process per node and a thread per slot
//! (named by metadata events), each dependency a flow (`s` → `f`), and the critical path again
//! on a track of its own. Pure: the timeline in, JSON out.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::exec::JobKind;
use crate::exec::events::Lane;

use super::{Bar, Timeline};

/// The process of the critical path's track.
const CRITICAL_PID: u64 = 0;

fn category(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Build => "build",
        JobKind::Assemble => "assemble",
        JobKind::Push => "push",
    }
}

/// Process and thread ids: a process per node (1, 2, ... in order of first appearance, this
/// machine first), a thread per lane and slot.
fn ids(timeline: &Timeline) -> (BTreeMap<Option<&str>, u64>, impl Fn(&Bar) -> u64) {
    let mut nodes: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    for b in &timeline.bars {
        let next = nodes.len() as u64 + 1;
        nodes.entry(b.node.as_deref()).or_insert(next);
    }
    let tid = |b: &Bar| match b.lane {
        Lane::Builds => 1 + b.slot as u64,
        Lane::Lists => 1001 + b.slot as u64,
    };
    (nodes, tid)
}

fn us(ms: u64) -> u64 {
    ms * 1000
}

/// The trace of `timeline`.
pub fn trace(timeline: &Timeline) -> String {
    let (nodes, tid) = ids(timeline);
    let pid = |b: &Bar| nodes[&b.node.as_deref()];
    let mut events: Vec<Value> = Vec::new();
    for (node, p) in &nodes {
        let name = node.map_or("this machine".to_string(), |n| format!("node {n}"));
        events.push(
            json!({"name": "process_name", "ph": "M", "pid": p, "tid": 0, "args": {"name": name}}),
        );
        events.push(json!({"name": "process_sort_index", "ph": "M", "pid": p, "tid": 0, "args": {"sort_index": p}}));
    }
    let mut threads: BTreeMap<(u64, u64), String> = BTreeMap::new();
    for b in &timeline.bars {
        let lane = match b.lane {
            Lane::Builds => "builds",
            Lane::Lists => "lists",
        };
        threads.insert((pid(b), tid(b)), format!("{lane} slot {}", b.slot));
    }
    for ((p, t), name) in &threads {
        events.push(
            json!({"name": "thread_name", "ph": "M", "pid": p, "tid": t, "args": {"name": name}}),
        );
        events.push(json!({"name": "thread_sort_index", "ph": "M", "pid": p, "tid": t, "args": {"sort_index": t}}));
    }
    let critical: std::collections::HashSet<usize> = timeline.critical.iter().copied().collect();
    for (i, b) in timeline.bars.iter().enumerate() {
        events.push(json!({
            "name": b.label, "cat": category(b.kind), "ph": "X",
            "ts": us(b.start_ms), "dur": us(b.ms()), "pid": pid(b), "tid": tid(b),
            "args": {"job": category(b.kind), "node": b.node, "slot": b.slot, "critical": critical.contains(&i)},
        }));
    }
    // A flow starts inside the slice it leaves (its last microsecond) and binds to the
    // slice it enters at that slice's start.
    for (n, &(from, to)) in timeline.edges.iter().enumerate() {
        let (a, b) = (&timeline.bars[from], &timeline.bars[to]);
        let leave = us(a.end_ms).saturating_sub(1).max(us(a.start_ms));
        events.push(json!({"name": "dependency", "cat": "dependency", "ph": "s", "id": n, "ts": leave, "pid": pid(a), "tid": tid(a)}));
        events.push(json!({"name": "dependency", "cat": "dependency", "ph": "f", "bp": "e", "id": n, "ts": us(b.start_ms), "pid": pid(b), "tid": tid(b)}));
    }
    events.push(json!({"name": "process_name", "ph": "M", "pid": CRITICAL_PID, "tid": 0, "args": {"name": "critical path"}}));
    events.push(json!({"name": "thread_name", "ph": "M", "pid": CRITICAL_PID, "tid": 1, "args": {"name": "critical path"}}));
    for &i in &timeline.critical {
        let b = &timeline.bars[i];
        events.push(json!({
            "name": b.label, "cat": "critical", "ph": "X",
            "ts": us(b.start_ms), "dur": us(b.ms()), "pid": CRITICAL_PID, "tid": 1,
            "args": {"job": category(b.kind)},
        }));
    }
    let doc = json!({"traceEvents": events, "displayTimeUnit": "ms", "otherData": {"summary": timeline.line()}});
    serde_json::to_string(&doc).expect("a trace serialises") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_job_is_an_event_and_every_dependency_a_flow() {
        let t = super::super::tests::sample();
        let doc: Value = serde_json::from_str(&trace(&t)).unwrap();
        let events = doc["traceEvents"].as_array().unwrap();
        let complete: Vec<&Value> = events
            .iter()
            .filter(|e| e["ph"] == "X" && e["cat"] != "critical")
            .collect();
        assert_eq!(complete.len(), t.bars.len());
        assert_eq!(complete[3]["dur"], 4_000_000);
        let starts = events.iter().filter(|e| e["ph"] == "s").count();
        let ends = events.iter().filter(|e| e["ph"] == "f").count();
        assert_eq!((starts, ends), (t.edges.len(), t.edges.len()));
        let critical = events.iter().filter(|e| e["cat"] == "critical").count();
        assert_eq!(critical, t.critical.len());
    }
}
