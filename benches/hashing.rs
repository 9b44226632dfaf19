//! Hashing the inputs of a run (`mab::inputs`): 1,000 build contexts of 50 files each (1 KiB to
//! 8 KiB, 3 directories deep), cold (no hash cache: every file read) and warm (the cache of the
//! cold run: every file only stat'ed). `cargo bench --bench hashing [-- CONTEXTS FILES]`.

use std::path::Path;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn write_tree(root: &Path, contexts: usize, files: usize) {
    let mut toml = String::from(
        "[defaults]\nregistry = \"r.test/bench\"\nplatforms = [\"linux/amd64\"]\ntags = [\"1\"]\n[builder]\noci_labels = false\n",
    );
    for c in 0..contexts {
        let dir = root.join(format!("img-{c}"));
        for f in 0..files {
            let sub = dir.join(format!("d{}/e{}", f % 3, f % 5));
            std::fs::create_dir_all(&sub).unwrap();
            let size = 1024 + (c * 31 + f * 17) % 7168;
            let body: Vec<u8> = (0..size).map(|i| (i * 7 + c + f) as u8).collect();
            std::fs::write(sub.join(format!("f{f}.txt")), body).unwrap();
        }
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        toml.push_str(&format!("[images.img-{c}]\ncontext = \"img-{c}\"\n"));
    }
    std::fs::write(root.join("multiarch.toml"), toml).unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let nums: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (contexts, files) = (
        nums.first().copied().unwrap_or(1000),
        nums.get(1).copied().unwrap_or(50),
    );
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), contexts, files);
    // Files changed within the last two seconds are never cached (their stamp could still
    // change unseen): let the new tree age past that.
    std::thread::sleep(Duration::from_millis(2500));
    let plan = mab::plan_file(
        &dir.path().join("multiarch.toml"),
        &[],
        &mab::Selection::default(),
    )
    .expect("the generated config plans");
    let cache = mab::inputs::cache_path(&plan.workdir);
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    let bases = mab::inputs::Resolved::new();
    let rounds = 5;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let mut first = None;
    for _ in 0..rounds {
        let _ = std::fs::remove_file(&cache);
        let t = Instant::now();
        let d = mab::inputs::digests(&plan, &mab::inputs::hash_files(&plan).unwrap(), &bases);
        cold.push(t.elapsed());
        // Each context holds its Dockerfile too.
        assert_eq!(d.files_read, contexts * (files + 1));
        first.get_or_insert(d.builds.clone());
        let t = Instant::now();
        let d = mab::inputs::digests(&plan, &mab::inputs::hash_files(&plan).unwrap(), &bases);
        warm.push(t.elapsed());
        assert_eq!(d.files_read, 0, "the warm run read files");
        assert_eq!(Some(&d.builds), first.as_ref());
    }
    println!(
        "{contexts} contexts x {files} files: cold {:.0} ms, warm {:.0} ms (median of {rounds})",
        median(cold).as_secs_f64() * 1000.0,
        median(warm).as_secs_f64() * 1000.0
    );
}
