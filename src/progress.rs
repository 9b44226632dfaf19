//! What a run tells the person watching it: indicatif bars on a terminal (an overall bar and a
//! line per running job with its elapsed time), one timestamped line per event elsewhere, so CI
//! logs stay readable.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::events::{Next, RegistryCheck, RunEvent, Span, Subject};
use crate::exec::schedule::Job;
use crate::plan::Plan;

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
    labels: Labels,
}

/// How the run's builds and lists are named on screen; events name them by index.
pub struct Labels {
    /// Per build: its id.
    builds: Vec<String>,
    lists: Vec<ListLabel>,
}

struct ListLabel {
    image: String,
    /// The local list's name.
    list: String,
    platforms: Vec<String>,
}

impl Labels {
    pub fn of(plan: &Plan) -> Self {
        Self {
            builds: plan.builds.iter().map(|b| b.id.clone()).collect(),
            lists: plan
                .manifests
                .iter()
                .map(|m| ListLabel {
                    image: m.image.clone(),
                    list: m.list.clone(),
                    platforms: m.platforms.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        }
    }

    fn of_subject(&self, subject: Subject) -> &str {
        match subject {
            Subject::Build(i) => &self.builds[i],
            Subject::List(m) => &self.lists[m].image,
        }
    }
}

/// Whether a line shows with `-q`: failures and interrupts only.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loud {
    Always,
    NotQuiet,
}

/// How a job's end shows: its word, whether it ends a unit of the overall bar (each build
/// counts once, and each list once: when it is pushed, stays local, fails or is skipped), and
/// whether `-q` shows it.
struct End {
    word: &'static str,
    counts: bool,
    loud: Loud,
}

const BUILT: End = End {
    word: "built",
    counts: true,
    loud: Loud::NotQuiet,
};
const ADDED: End = End {
    word: "added",
    counts: false,
    loud: Loud::NotQuiet,
};
const LOCAL: End = End {
    word: "local",
    counts: true,
    loud: Loud::NotQuiet,
};
const READY: End = End {
    word: "ready",
    counts: false,
    loud: Loud::NotQuiet,
};
const PUSHED: End = End {
    word: "pushed",
    counts: true,
    loud: Loud::NotQuiet,
};
const FAILED: End = End {
    word: "FAILED",
    counts: true,
    loud: Loud::Always,
};

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    running: Mutex<HashMap<Subject, ProgressBar>>,
}

fn clock() -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    // 2026-11-29T13:12:01Z → 13:12:01
    now.get(11..19).unwrap_or(&now).to_string()
}

/// What a job does, in a word.
fn verb(job: Job) -> &'static str {
    match job {
        Job::Build(_) => "build",
        Job::Assemble(_) => "assemble",
        Job::Push(_) => "push",
    }
}

impl Progress {
    pub fn new(mode: Mode, labels: Labels, verbose: bool) -> Self {
        let total = (labels.builds.len() + labels.lists.len()) as u64;
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
            labels,
        }
    }

    fn line(&self, loud: Loud, text: &str) {
        if self.quiet && loud != Loud::Always {
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

    /// Shows what `event` says.
    pub fn show(&self, event: &RunEvent) {
        let labels = &self.labels;
        match event {
            RunEvent::Checked(check) => self.line(Loud::NotQuiet, &checked(check)),
            RunEvent::Started {
                job,
                label,
                command,
                ..
            } => self.start(job.subject(), label, verb(*job), command),
            RunEvent::Built { build, span, .. } => {
                self.finish(Subject::Build(*build), &BUILT, span, "");
            }
            RunEvent::Added { list, span, holds } => {
                let label = &labels.lists[*list];
                let detail = match &label.platforms[..*holds] {
                    [] => "created".to_string(),
                    held => format!("holds {} of {}", held.join(", "), label.platforms.len()),
                };
                self.finish(Subject::List(*list), &ADDED, span, &detail);
            }
            RunEvent::ListReady { list, span, next } => {
                let subject = Subject::List(*list);
                match next {
                    Next::Local => {
                        let name = &labels.lists[*list].list;
                        self.finish(subject, &LOCAL, span, name);
                    }
                    Next::Deferred => self.finish(
                        subject,
                        &READY,
                        span,
                        "pushed once every build has succeeded (--atomic)",
                    ),
                    Next::Push => self.finish(subject, &READY, span, ""),
                }
            }
            RunEvent::Pushed {
                list,
                span,
                moved,
                tags,
            } => self.finish(
                Subject::List(*list),
                &PUSHED,
                span,
                &format!(
                    "{moved} tag(s) moved, {} unchanged, verified",
                    tags - moved
                ),
            ),
            RunEvent::Failed {
                job, span, reason, ..
            } => self.finish(job.subject(), &FAILED, span, reason),
            RunEvent::Skipped { subject, reason } => {
                if let Some(b) = &self.bars {
                    b.overall.inc(1);
                }
                let what = match subject {
                    Subject::Build(i) => labels.builds[*i].clone(),
                    Subject::List(m) => format!("{} manifest list", labels.lists[*m].image),
                };
                self.line(Loud::NotQuiet, &format!("skipped  {what}: {reason}"));
            }
            RunEvent::Interrupted { stopping, .. } => self.line(
                Loud::Always,
                &format!(
                    "interrupted: stopping {stopping} running command(s); interrupt again to kill them at once"
                ),
            ),
            RunEvent::Killing => self.line(
                Loud::Always,
                "interrupted again: killing every running command",
            ),
            RunEvent::Content { build, content } => {
                for warning in content.warnings() {
                    let label = &labels.builds[*build];
                    self.line(Loud::NotQuiet, &format!("warning  {label}: {warning}"));
                }
            }
            RunEvent::Tag { .. }
            | RunEvent::Marker { .. }
            | RunEvent::Attached { .. }
            | RunEvent::Signature { .. }
            | RunEvent::Index { .. } => {}
        }
    }

    /// A job started; `command` is shown with `-v`.
    fn start(&self, subject: Subject, label: &str, what: &str, command: &str) {
        if self.verbose && self.bars.is_none() {
            self.line(Loud::NotQuiet, &format!("start {what} {label}: {command}"));
            return;
        }
        match &self.bars {
            Some(b) => {
                let bar = b.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {elapsed:>4} {msg}")
                        .expect("a valid template"),
                );
                bar.set_message(format!("{what} {label}"));
                bar.enable_steady_tick(Duration::from_millis(120));
                b.running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(subject, bar);
            }
            None => self.line(Loud::NotQuiet, &format!("start {what} {label}")),
        }
    }

    /// A job ended (`end`), after `span`; `detail` says more.
    fn finish(&self, subject: Subject, end: &End, span: &Span, detail: &str) {
        let text = format!(
            "{:<8} {} ({:.1}s){}{detail}",
            end.word,
            self.labels.of_subject(subject),
            span.elapsed().as_secs_f64(),
            if detail.is_empty() { "" } else { ": " }
        );
        if let Some(b) = &self.bars {
            if let Some(bar) = b
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&subject)
            {
                bar.finish_and_clear();
                b.multi.remove(&bar);
            }
            b.overall.inc(u64::from(end.counts));
        }
        self.line(end.loud, &text);
    }

    pub fn done(&self) {
        if let Some(b) = &self.bars {
            b.overall.finish_and_clear();
        }
    }
}

/// What the registry check found: one line, then one per list the registry could not tell
/// about.
fn checked(c: &RegistryCheck) -> String {
    let mut out = format!(
        "unchanged {} of {} image(s), {} of {} build(s) (the registry holds their inputs{}); {} file(s) hashed, {} read",
        c.unchanged_lists,
        c.lists,
        c.unchanged_builds,
        c.builds,
        if c.retagged > 0 {
            format!("; {} get new tags", c.retagged)
        } else {
            String::new()
        },
        c.files,
        c.files_read
    );
    for (image, why) in &c.unknown {
        out.push_str(&format!("\n{image}: built, as {why}"));
    }
    out
}
