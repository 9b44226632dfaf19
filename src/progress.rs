//! What a run tells the person watching it: indicatif bars on a terminal (an overall bar and a
//! line per running job with its elapsed time), one timestamped line per event elsewhere, so CI
//! logs stay readable.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Bars on a terminal, plain lines elsewhere.
    Auto,
    /// Always bars.
    Tty,
    /// One line per event.
    Plain,
    /// Only failures and interrupts (`-q`).
    Quiet,
}

pub struct Progress {
    bars: Option<Bars>,
    lines: Mutex<()>,
    quiet: bool,
    /// Show each command as it starts (`-v`).
    verbose: bool,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
}

fn clock() -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // 2026-11-29T13:12:01Z → 13:12:01
    now.get(11..19).unwrap_or(&now).to_string()
}

impl Progress {
    pub fn new(mode: Mode, total: u64, verbose: bool) -> Self {
        let tty = match mode {
            // A bar would hide the command lines -v asks for.
            Mode::Auto => std::io::stderr().is_terminal() && !verbose,
            Mode::Tty => true,
            Mode::Plain | Mode::Quiet => false,
        };
        let bars = tty.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(ProgressBar::new(total));
            overall.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            overall.enable_steady_tick(Duration::from_millis(200));
            Bars {
                multi,
                overall,
                running: Mutex::new(HashMap::new()),
            }
        });
        Self {
            bars,
            lines: Mutex::new(()),
            quiet: mode == Mode::Quiet,
            verbose,
        }
    }

    fn line(&self, text: &str) {
        if self.quiet && !(text.starts_with("FAILED") || text.starts_with("interrupted")) {
            return;
        }
        match &self.bars {
            Some(b) => b.multi.suspend(|| eprintln!("{text}")),
            None => {
                let _guard = self.lines.lock();
                eprintln!("[{}] {text}", clock());
            }
        }
    }

    /// A job started; `command` is shown with `-v`.
    pub fn start(&self, id: &str, what: &str, command: &str) {
        if self.verbose && self.bars.is_none() {
            self.line(&format!("start {what} {id}: {command}"));
            return;
        }
        match &self.bars {
            Some(b) => {
                let bar = b.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                        .expect("a valid template"),
                );
                bar.set_message(format!("{what} {id}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                b.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id.to_string(), bar);
            }
            None => self.line(&format!("start {what} {id}")),
        }
    }

    /// A job ended; `outcome` is a short word (`built`, `FAILED`, ...), `detail` an optional
    /// note. Every outcome but `ready` (a list assembled, its push to come) ends a unit of the
    /// overall bar.
    pub fn finish(&self, id: &str, outcome: &str, elapsed: Duration, detail: &str) {
        let text = format!(
            "{outcome:<8} {id} ({:.1}s){}{detail}",
            elapsed.as_secs_f64(),
            if detail.is_empty() { "" } else { ": " }
        );
        if let Some(b) = &self.bars {
            if let Some(bar) = b
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id)
            {
                bar.finish_and_clear();
                b.multi.remove(&bar);
            }
            // A list counts once, when it is pushed or stays local.
            b.overall
                .inc(u64::from(!matches!(outcome, "ready" | "added")));
        }
        self.line(&text);
    }

    /// Something not tied to a running job (a skip, a note).
    pub fn note(&self, text: &str) {
        if let Some(b) = &self.bars {
            b.overall.inc(u64::from(text.starts_with("skipped")));
        }
        self.line(text);
    }

    pub fn done(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
        }
    }
}
