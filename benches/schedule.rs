//! The scheduler on simulated runs, no podman: `cargo bench --bench schedule`. For 1,000 random
//! DAGs of 10–500 builds (durations 1–10, a third of them emulated at 5×) on one machine of
//! 1–4 slots, then 1,000 over 1–4 build nodes of 1–3 slots each (every build on the node of its
//! platform), the makespan over a lower bound (the critical path; per node, the work that cannot
//! start before each of its builds can, per slot); prints the median and the worst ratio.
//! Manifest jobs take no time here.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use mab::exec::schedule::{Job, Scheduler, Shape};
use mab::plan::BuildIx;

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One random run: the shape, and each build's duration.
fn dag(rng: &mut Rng, node_slots: Vec<usize>) -> (Shape, Vec<u64>) {
    let n = 10 + rng.next(491) as usize;
    // Chains of images (each depends on a few earlier ones), like a monorepo's layers.
    let depends_on: Vec<Vec<BuildIx>> = (0..n)
        .map(|i| {
            let k = if i == 0 { 0 } else { rng.next(3) as usize };
            let mut d: Vec<usize> = (0..k).map(|_| rng.next(i as u64) as usize).collect();
            d.sort();
            d.dedup();
            d.into_iter().map(BuildIx::new).collect()
        })
        .collect();
    let durations: Vec<u64> = (0..n)
        .map(|_| {
            let base = 1 + rng.next(10);
            if rng.next(3) == 0 { base * 5 } else { base }
        })
        .collect();
    let lists = (n / 4).max(1);
    let shape = Shape {
        ids: (0..n).map(|i| format!("b{i}")).collect(),
        costs: durations.clone(),
        depends_on,
        manifest_builds: (0..lists)
            .map(|m| {
                (0..n)
                    .filter(|b| b % lists == m)
                    .map(BuildIx::new)
                    .collect()
            })
            .collect(),
        pushes: vec![true; lists],
        node: (0..n)
            .map(|_| rng.next(node_slots.len() as u64) as usize)
            .collect(),
        node_slots,
    };
    (shape, durations)
}

/// Simulated time until every job is done.
fn makespan(shape: Shape, durations: &[u64]) -> u64 {
    let slots = shape.node_slots.iter().sum();
    let mut s = Scheduler::new(shape, false, false);
    let mut now = 0;
    // (finish time, job), earliest first.
    let mut running: BinaryHeap<Reverse<(u64, usize, u8)>> = BinaryHeap::new();
    loop {
        while let Some(job) = s.next(slots) {
            let (id, kind, took) = match job {
                Job::Build(i) => (i.get(), 0, durations[i]),
                Job::Assemble(m) => (m, 1, 0),
                Job::Push(m) => (m, 2, 0),
            };
            running.push(Reverse((now + took, id, kind)));
        }
        if s.done() {
            return now;
        }
        let Reverse((at, id, kind)) = running.pop().expect("something runs");
        now = at;
        match kind {
            0 => s.built(BuildIx::new(id), Ok(())),
            1 => {
                s.assembled(id, Ok(()));
            }
            _ => s.pushed(id, Ok(())),
        }
    }
}

/// A lower bound of any schedule's makespan: the critical path, and per node, for every build
/// of it, the earliest that build can start plus the work of the node's builds that cannot start
/// earlier, over the node's slots (none of that work can run before).
fn lower_bound(shape: &Shape, durations: &[u64]) -> u64 {
    let mut earliest = vec![0u64; durations.len()];
    let mut finish = vec![0u64; durations.len()];
    for i in 0..durations.len() {
        earliest[i] = shape.depends_on[i]
            .iter()
            .map(|&d| finish[d])
            .max()
            .unwrap_or(0);
        finish[i] = earliest[i] + durations[i];
    }
    let critical = finish.iter().copied().max().unwrap_or(0);
    let busiest = (0..shape.node_slots.len())
        .map(|n| {
            let mut on: Vec<usize> = (0..durations.len())
                .filter(|&i| shape.node[i] == n)
                .collect();
            on.sort_by_key(|&i| std::cmp::Reverse(earliest[i]));
            let slots = shape.node_slots[n] as u64;
            let mut work = 0;
            let mut bound = 0;
            for i in on {
                work += durations[i];
                bound = bound.max(earliest[i] + work.div_ceil(slots));
            }
            bound
        })
        .max()
        .unwrap_or(0);
    critical.max(busiest)
}

fn ratios(rng: &mut Rng, nodes: impl Fn(&mut Rng) -> Vec<usize>) -> (f64, f64, f64) {
    let mut ratios = Vec::new();
    for _ in 0..1000 {
        let slots = nodes(rng);
        let (shape, durations) = dag(rng, slots);
        let bound = lower_bound(&shape, &durations);
        let took = makespan(shape, &durations);
        ratios.push(took as f64 / bound as f64);
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        ratios[ratios.len() / 2],
        ratios[ratios.len() * 95 / 100],
        ratios[ratios.len() - 1],
    )
}

fn main() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (median, p95, worst) = ratios(&mut rng, |rng| vec![1 + rng.next(4) as usize]);
    println!(
        "1,000 random DAGs of 10-500 builds on 1-4 slots: makespan / lower bound: median {median:.3}, p95 {p95:.3}, worst {worst:.3}"
    );
    let (median, p95, worst) = ratios(&mut rng, |rng| {
        (0..1 + rng.next(4))
            .map(|_| 1 + rng.next(3) as usize)
            .collect()
    });
    println!(
        "1,000 random DAGs of 10-500 builds over 1-4 nodes of 1-3 slots: makespan / lower bound: median {median:.3}, p95 {p95:.3}, worst {worst:.3}"
    );
}
