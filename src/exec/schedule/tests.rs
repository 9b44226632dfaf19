//! The scheduler on simulated jobs: no processes, every ordering decided by the test.

use super::*;

/// Build `i` of the shape.
fn bx(i: usize) -> BuildIx {
    BuildIx::new(i)
}

fn ixs(builds: &[usize]) -> Vec<BuildIx> {
    builds.iter().map(|&i| bx(i)).collect()
}

/// base <- app (per platform) and an independent `other`, for two platforms; lists: base, app,
/// other, each holding its two builds.
fn shape() -> Shape {
    shape_with(1)
}

/// [`shape`] with `slots` builds at once.
fn shape_with(slots: usize) -> Shape {
    let ids = [
        "base@amd64",
        "base@arm64",
        "app@amd64",
        "app@arm64",
        "other@amd64",
        "other@arm64",
    ];
    Shape {
        ids: ids.iter().map(|s| s.to_string()).collect(),
        costs: vec![1, 5, 1, 5, 1, 5],
        depends_on: [&[][..], &[], &[0], &[1], &[], &[]].map(ixs).into(),
        manifest_builds: [[0, 1], [2, 3], [4, 5]].map(|b| ixs(&b)).into(),
        pushes: vec![true, true, true],
        node: vec![0; 6],
        node_slots: vec![slots],
    }
}

#[test]
fn a_dependent_starts_when_its_own_platform_is_built() {
    let mut s = Scheduler::new(shape_with(2), false, false);
    // The emulated arm64 chain has the most work behind it.
    assert_eq!(s.next(2), Some(Job::Build(bx(1))));
    assert_eq!(s.next(2), Some(Job::Build(bx(5))));
    assert_eq!(s.next(2), None, "two slots");
    s.built(bx(1), Ok(()));
    // base's list is created at once (a list job goes first), and app@arm64 is ready
    // although base@amd64 has not even started: no level barrier.
    assert_eq!(s.next(2), Some(Job::Assemble(0)));
    assert_eq!(s.next(2), Some(Job::Build(bx(3))));
    assert_eq!(s.builds[0], Status::NotStarted);
}

#[test]
fn lists_are_assembled_while_their_builds_run_and_pushed_when_complete() {
    // With one slot, each list's arm64 build (the second platform, with more work behind it)
    // is built first: its list is created before any image can go in.
    let mut s = Scheduler::new(shape(), false, false);
    let mut order = Vec::new();
    let mut batches: Vec<(usize, Batch)> = Vec::new();
    while !s.done() {
        while let Some(job) = s.next(1) {
            order.push(job);
            match job {
                Job::Build(i) => s.built(i, Ok(())),
                Job::Assemble(m) => {
                    let batch = s.batch(m).cloned().unwrap();
                    // Each image added is built, and added after the ones before it.
                    let builds = [[0, 1], [2, 3], [4, 5]][m];
                    for k in batch.entries.clone() {
                        assert_eq!(s.builds[builds[k]], Status::Built);
                    }
                    let before = batches.iter().filter(|(n, _)| *n == m).count();
                    assert_eq!(batch.create, before == 0, "created by its first job");
                    if let Some((_, last)) = batches.iter().rev().find(|(n, _)| *n == m) {
                        assert_eq!(last.entries.end, batch.entries.start);
                    }
                    batches.push((m, batch.clone()));
                    let complete = batch.entries.end == 2;
                    let expected = if complete {
                        Assembled::Push
                    } else {
                        Assembled::Partial
                    };
                    assert_eq!(s.assembled(m, Ok(())), Some(expected));
                }
                Job::Push(m) => s.pushed(m, Ok(())),
            }
        }
    }
    let at = |job: Job| order.iter().rposition(|j| *j == job).unwrap();
    for (m, builds) in [(0, [0, 1]), (1, [2, 3]), (2, [4, 5])] {
        for b in builds {
            assert!(at(Job::Build(bx(b))) < at(Job::Push(m)));
        }
        assert!(at(Job::Assemble(m)) < at(Job::Push(m)));
    }
    // base@arm64 (the second platform) was built first: its list was created while
    // base@amd64 built, then got both images in one job.
    let base: Vec<&Batch> = batches
        .iter()
        .filter(|(m, _)| *m == 0)
        .map(|(_, b)| b)
        .collect();
    let create = Batch {
        create: true,
        entries: 0..0,
    };
    let both = Batch {
        create: false,
        entries: 0..2,
    };
    assert_eq!(base, [&create, &both]);
    assert!(s.partial_lists().next().is_none());
    let (builds, manifests, success) = s.finish();
    assert!(success);
    assert!(builds.iter().all(|b| *b == Status::Built));
    assert!(manifests.iter().all(|m| *m == Status::Pushed));
}

#[test]
fn images_go_into_a_list_in_platform_order_whichever_is_built_first() {
    let mut s = Scheduler::new(shape(), false, false);
    // base@arm64 (position 1) first: the list is created, but nothing is added before amd64.
    assert_eq!(s.next(1), Some(Job::Build(bx(1))));
    s.built(bx(1), Ok(()));
    assert_eq!(s.next(1), Some(Job::Assemble(0)));
    assert_eq!(
        s.batch(0),
        Some(&Batch {
            create: true,
            entries: 0..0
        })
    );
    assert_eq!(s.assembled(0, Ok(())), Some(Assembled::Partial));
    assert_eq!(s.added(0), 0);
    // Then base@amd64: both go in, in one job.
    while let Some(job) = s.next(1) {
        match job {
            Job::Assemble(0) => break,
            Job::Build(i) => s.built(i, Ok(())),
            Job::Assemble(m) => {
                s.assembled(m, Ok(()));
            }
            Job::Push(m) => s.pushed(m, Ok(())),
        }
    }
    assert_eq!(
        s.batch(0),
        Some(&Batch {
            create: false,
            entries: 0..2
        })
    );
}

#[test]
fn a_list_a_failure_left_incomplete_is_partial() {
    let mut s = Scheduler::new(shape(), true, false);
    assert_eq!(s.next(1), Some(Job::Build(bx(1))));
    s.built(bx(1), Ok(()));
    assert_eq!(s.next(1), Some(Job::Assemble(0)));
    // base@amd64 fails while base's list is being created (its job still runs).
    while let Some(job) = s.next(1) {
        match job {
            Job::Build(i) if i == bx(0) => {
                s.built(i, Err("exit 1".into()));
                break;
            }
            Job::Build(i) => s.built(i, Ok(())),
            other => panic!("the list slot is taken: {other:?}"),
        }
    }
    assert_eq!(s.assembled(0, Ok(())), None, "skipped meanwhile");
    assert_eq!(s.partial_lists().collect::<Vec<_>>(), [0]);
    assert!(matches!(s.manifests[0], Status::Skipped { .. }));
}

#[test]
fn a_failure_skips_what_needs_it_and_stops_unless_keep_going() {
    for keep_going in [false, true] {
        let mut s = Scheduler::new(shape(), keep_going, false);
        assert_eq!(s.next(1), Some(Job::Build(bx(1))));
        s.built(bx(1), Err("exit 1".into()));
        let notes = s.notes();
        assert!(notes.contains(&Note::SkippedBuild(
            bx(3),
            "depends on base@arm64, which failed".into()
        )));
        assert!(notes.contains(&Note::SkippedManifest(
            0,
            "its build base@arm64 failed".into()
        )));
        assert!(notes.contains(&Note::SkippedManifest(
            1,
            "its build app@arm64 failed (it depends on base@arm64)".into()
        )));
        if !keep_going {
            assert_eq!(s.next(1), None);
            assert!(s.done());
            let (builds, _, success) = s.finish();
            assert!(!success);
            assert_eq!(builds[4], Status::NotStarted);
            continue;
        }
        // Going on: what does not depend on the failure is built and published.
        let mut pushed = Vec::new();
        while let Some(job) = s.next(1) {
            match job {
                Job::Build(i) => {
                    assert_ne!(i, bx(3), "a skipped build never starts");
                    s.built(i, Ok(()));
                }
                Job::Assemble(m) => {
                    s.assembled(m, Ok(()));
                }
                Job::Push(m) => {
                    pushed.push(m);
                    s.pushed(m, Ok(()));
                }
            }
        }
        assert_eq!(pushed, [2], "only `other` holds no failed build");
    }
}

#[test]
fn atomic_pushes_only_after_every_build_succeeded() {
    let mut s = Scheduler::new(shape(), true, true);
    let mut deferred = 0;
    let mut last_build = 0;
    let mut first_push = None;
    let mut step = 0;
    while let Some(job) = s.next(1) {
        step += 1;
        match job {
            Job::Build(i) => {
                last_build = step;
                s.built(i, Ok(()));
            }
            Job::Assemble(m) => match s.assembled(m, Ok(())) {
                Some(Assembled::Deferred) => deferred += 1,
                other => assert_eq!(other, Some(Assembled::Partial)),
            },
            Job::Push(m) => {
                first_push.get_or_insert(step);
                s.pushed(m, Ok(()));
            }
        }
    }
    assert_eq!(deferred, 3);
    assert!(first_push.unwrap() > last_build);

    // One failure: nothing is pushed at all.
    let mut s = Scheduler::new(shape(), true, true);
    while let Some(job) = s.next(1) {
        match job {
            Job::Build(i) if i == bx(4) => s.built(i, Err("exit 1".into())),
            Job::Build(i) => s.built(i, Ok(())),
            Job::Assemble(m) => {
                s.assembled(m, Ok(()));
            }
            Job::Push(_) => panic!("pushed although a build failed"),
        }
    }
    let (_, manifests, success) = s.finish();
    assert!(!success);
    assert!(
        manifests
            .iter()
            .all(|m| matches!(m, Status::Skipped { .. }))
    );
}

#[test]
fn an_interrupt_starts_nothing_more() {
    let mut s = Scheduler::new(shape_with(2), false, false);
    assert!(s.next(2).is_some());
    assert!(s.next(2).is_some());
    s.stop();
    assert_eq!(s.next(2), None);
    assert!(!s.done(), "two jobs still run");
    s.built(bx(1), Ok(()));
    s.built(bx(5), Ok(()));
    assert!(s.done());
    let (_, _, success) = s.finish();
    assert!(!success);
}

/// On random DAGs with random outcomes and slots: no build starts before its dependencies
/// succeeded, no more than `slots` builds (and `slots` list jobs) run, and every job ends in a
/// final status.
#[test]
fn random_dags_respect_dependencies_and_slots() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rand = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..300 {
        let n = 1 + rand(40) as usize;
        let depends_on: Vec<Vec<usize>> = (0..n)
            .map(|i| (0..i).filter(|_| rand(5) == 0).collect())
            .collect();
        let manifests = 1 + rand(n as u64) as usize;
        let manifest_builds: Vec<Vec<usize>> = (0..manifests)
            .map(|m| (0..n).filter(|b| b % manifests == m).collect())
            .collect();
        let nodes = 1 + rand(3) as usize;
        let node: Vec<usize> = (0..n).map(|_| rand(nodes as u64) as usize).collect();
        let node_slots: Vec<usize> = (0..nodes).map(|_| 1 + rand(3) as usize).collect();
        let shape = Shape {
            ids: (0..n).map(|i| format!("b{i}")).collect(),
            costs: (0..n).map(|_| 1 + rand(5)).collect(),
            depends_on: depends_on.iter().map(|d| ixs(d)).collect(),
            manifest_builds: manifest_builds.iter().map(|b| ixs(b)).collect(),
            pushes: (0..manifests).map(|_| rand(2) == 0).collect(),
            node: node.clone(),
            node_slots: node_slots.clone(),
        };
        let slots = 1 + rand(4) as usize;
        let mut s = Scheduler::new(shape, rand(2) == 0, rand(2) == 0);
        let mut running: Vec<Job> = Vec::new();
        while !s.done() {
            while let Some(job) = s.next(slots) {
                if let Job::Build(i) = job {
                    for &d in &depends_on[i] {
                        assert_eq!(s.builds[d], Status::Built, "b{i} started before b{d}");
                    }
                }
                if let Job::Assemble(m) = job {
                    assert!(!running.contains(&job), "two jobs of list {m} at once");
                    for k in s.batch(m).unwrap().entries.clone() {
                        assert_eq!(s.builds[manifest_builds[m][k]], Status::Built);
                    }
                }
                running.push(job);
            }
            let builds = running
                .iter()
                .filter(|j| matches!(j, Job::Build(_)))
                .count();
            assert!(running.len() - builds <= slots);
            for (n, &cap) in node_slots.iter().enumerate() {
                let on = running
                    .iter()
                    .filter(|j| matches!(j, Job::Build(i) if node[*i] == n))
                    .count();
                assert!(on <= cap, "node {n} runs {on} builds, has {cap} slots");
            }
            // Releasing --atomic's pushes may have ended the run.
            if s.done() {
                break;
            }
            assert!(!running.is_empty(), "not done, yet nothing runs or starts");
            // Finish a random running job, failing one in ten.
            let job = running.swap_remove(rand(running.len() as u64) as usize);
            let result = if rand(10) == 0 {
                Err("x".to_string())
            } else {
                Ok(())
            };
            match job {
                Job::Build(i) => s.built(i, result),
                Job::Assemble(m) => {
                    s.assembled(m, result);
                }
                Job::Push(m) => s.pushed(m, result),
            }
        }
        assert!(running.is_empty());
        let (builds, manifests, success) = s.finish();
        if success {
            assert!(builds.iter().chain(&manifests).all(|st| st.finished()));
        }
    }
}

#[test]
fn each_node_runs_its_own_builds_in_its_own_slots() {
    // Two nodes of one slot each: amd64 builds on node 0, arm64 ones on node 1.
    let mut shape = shape();
    shape.node = vec![0, 1, 0, 1, 0, 1];
    shape.node_slots = vec![1, 1];
    let mut s = Scheduler::new(shape, false, false);
    // The ready build of highest priority first, whichever node: base@arm64 (app@arm64 behind
    // it), then on the other node base@amd64 (the lower index of its ties).
    assert_eq!(s.next(1), Some(Job::Build(bx(1))));
    assert_eq!(s.next(1), Some(Job::Build(bx(0))));
    // Both nodes are busy, though other@amd64 and other@arm64 are ready.
    assert_eq!(s.next(1), None);
    s.built(bx(0), Ok(()));
    // Node 0 is free again: app@amd64 is ready now and beats other@amd64 (lower index); the
    // list job that takes base@amd64 in goes first.
    assert_eq!(s.next(1), Some(Job::Assemble(0)));
    assert_eq!(s.next(1), Some(Job::Build(bx(2))));
    assert_eq!(s.next(1), None, "node 1 still runs base@arm64");
}
