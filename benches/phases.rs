//! Time of each planning phase on a config, in process: `cargo bench --bench phases -- FILE`.
//! bench/plan.sh generates the configs and measures the whole command; this shows where the
//! time goes inside it.

use std::path::PathBuf;

// As in the binary (src/main.rs), so the phases cost what they cost in `mab plan`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::{Duration, Instant};

fn main() {
    let path: PathBuf = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(Into::into)
        .unwrap_or_else(|| {
            eprintln!("usage: cargo bench --bench phases -- path/to/multiarch.toml");
            std::process::exit(2);
        });
    // A monorepo's root stands for every file below it, as in `mab plan -f`.
    let cwd = std::env::current_dir().expect("a working directory");
    let location =
        mab::config::Location::find(&cwd, Some(&path), false).expect("a config location");
    let runs = 10;
    let mut totals = [Duration::ZERO; 4];
    for _ in 0..runs {
        let t = Instant::now();
        let config = location
            .load(&[], &Default::default())
            .expect("config loads");
        let t1 = Instant::now();
        let instances = mab::matrix::expand(&config).expect("config expands");
        let t2 = Instant::now();
        let plan =
            mab::plan::plan(&config, &instances, &mab::Selection::default()).expect("config plans");
        let t3 = Instant::now();
        let mut json = Vec::new();
        let builder = mab::settings::BuilderSettings::resolve(&config.builder);
        mab::output::json(&plan, &builder, &mut json).expect("writes to memory");
        let t4 = Instant::now();
        std::hint::black_box(json);
        for (total, d) in totals.iter_mut().zip([t1 - t, t2 - t1, t3 - t2, t4 - t3]) {
            *total += d;
        }
    }
    for (name, total) in ["load", "expand", "plan", "json"].iter().zip(totals) {
        println!(
            "{name:>7}: {:>7.2} ms",
            total.as_secs_f64() * 1000.0 / runs as f64
        );
    }
}
