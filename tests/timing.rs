//! The report's timing of each job (start and end from the run's start, node, lane and slot),
//! which issue 22's timeline and trace read, checked against what the stand-in podman logged
//! of when each build really ran.

use crate::common::fake::{project, run};
use serde_json::Value;

/// `(start_ms, end_ms, slot)` of every job of `kind` in the report's `section`.
fn jobs(report: &Value, section: &str, kind: &str) -> Vec<(String, u64, u64, u64)> {
    let mut all = Vec::new();
    for entry in report[section].as_array().unwrap() {
        let name = entry
            .get("id")
            .or_else(|| entry.get("image"))
            .and_then(Value::as_str)
            .unwrap()
            .to_string();
        for job in entry["jobs"].as_array().into_iter().flatten() {
            if job["job"] == kind {
                let ms = |k: &str| job[k].as_u64().unwrap();
                all.push((name.clone(), ms("start_ms"), ms("end_ms"), ms("slot")));
            }
        }
    }
    all
}

#[test]
fn every_job_is_timed_in_the_order_and_slots_it_ran() {
    let p = project();
    let report = p.path().join("report.json");
    let r = run(
        &p,
        &["--jobs", "2", "--report", report.to_str().unwrap()],
        &[("FAKE_SLEEP_AMD64", "0.2"), ("FAKE_SLEEP_ARM64", "0.2")],
    );
    assert!(r.out.status.success(), "{}", r.text());
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();

    let mut builds = jobs(&report, "builds", "build");
    assert_eq!(builds.len(), 6, "one job per build: {report:#}");
    for entry in report["builds"].as_array().unwrap() {
        let job = &entry["jobs"][0];
        assert_eq!(job["lane"], "builds");
        // Without [nodes], builds run on this machine.
        assert!(job["node"].is_null(), "{job}");
        // A build's duration is its job's.
        let took = job["end_ms"].as_u64().unwrap() - job["start_ms"].as_u64().unwrap();
        assert_eq!(entry["duration_ms"].as_u64().unwrap(), took, "{entry}");
        // The stand-in sleeps 200 ms per build.
        assert!(took >= 200, "{entry}");
    }
    builds.sort_by_key(|b| b.1);
    // Each build's span holds what the stand-in podman measured of it.
    let logged = |event: &str, id: &str| {
        r.at(&format!(
            "{event} localhost/mab/{}",
            id.replacen('@', ":", 1)
        ))
    };
    for (id, start, end, _) in &builds {
        let ran = ((logged("end", id) - logged("start", id)) * 1000.0) as u64;
        assert!(
            end - start >= ran,
            "{id}: {start}..{end} ms, the stand-in ran {ran} ms"
        );
    }
    // A dependent starts only after its dependency ended.
    let span = |id: &str| builds.iter().find(|b| b.0 == id).unwrap().clone();
    for platform in ["linux-amd64", "linux-arm64"] {
        let (base, app) = (
            span(&format!("base@{platform}")),
            span(&format!("app@{platform}")),
        );
        assert!(
            app.1 >= base.2,
            "app started at {} ms, base ended at {} ms",
            app.1,
            base.2
        );
    }
    // --jobs 2: two slots, and two builds that overlap never share one.
    for (n, a) in builds.iter().enumerate() {
        assert!(a.3 < 2, "{a:?}");
        for b in &builds[n + 1..] {
            let overlap = a.1 < b.2 && b.1 < a.2;
            assert!(!(overlap && a.3 == b.3), "{a:?} and {b:?} share a slot");
        }
    }

    // Each list: its assembly jobs and one push, in the lists' own lane, after its builds.
    let pushes = jobs(&report, "manifests", "push");
    assert_eq!(pushes.len(), 3, "{report:#}");
    for (image, start, end, slot) in &pushes {
        assert!(start <= end && *slot < 2);
        let last_build = builds
            .iter()
            .filter(|b| b.0.starts_with(&format!("{image}@")))
            .map(|b| b.2)
            .max()
            .unwrap();
        assert!(
            *start >= last_build,
            "{image} pushed before its builds ended"
        );
    }
    for entry in report["manifests"].as_array().unwrap() {
        let lanes: Vec<&Value> = entry["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| &j["lane"])
            .collect();
        assert!(lanes.iter().all(|l| *l == "lists"), "{entry}");
        assert!(
            entry["jobs"][0]["job"] == "assemble",
            "a list is assembled before it is pushed: {entry}"
        );
    }
}
