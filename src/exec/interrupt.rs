//! How far an interrupted run has got (nextest's `SignalCount`): the first SIGINT or SIGTERM
//! stops new jobs and asks running commands to stop, with [`KILL_GRACE`] before they are
//! killed; a second signal, or the end of the grace, kills them at once.

use std::time::Instant;

use super::KILL_GRACE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Interrupt {
    Running,
    /// The first signal came: commands were asked to stop, and are killed at `kill_at`.
    Stopping {
        signal: i32,
        kill_at: Instant,
    },
    /// A second signal came or the grace ended: every command was killed.
    Killed {
        signal: i32,
    },
}

/// What the coordinator does about a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Response {
    /// Start nothing more; ask running commands to stop.
    Stop,
    /// Kill every running command.
    Kill,
}

impl Interrupt {
    /// The signal that interrupted the run: the first one.
    pub(super) fn signal(self) -> Option<i32> {
        match self {
            Self::Running => None,
            Self::Stopping { signal, .. } | Self::Killed { signal } => Some(signal),
        }
    }

    /// When running commands are to be killed, if they are not yet.
    pub(super) fn deadline(self) -> Option<Instant> {
        match self {
            Self::Stopping { kill_at, .. } => Some(kill_at),
            Self::Running | Self::Killed { .. } => None,
        }
    }

    /// `signal` arrived at `now`.
    pub(super) fn on_signal(&mut self, signal: i32, now: Instant) -> Response {
        match *self {
            Self::Running => {
                *self = Self::Stopping {
                    signal,
                    kill_at: now + KILL_GRACE,
                };
                Response::Stop
            }
            Self::Stopping { signal: first, .. } | Self::Killed { signal: first } => {
                *self = Self::Killed { signal: first };
                Response::Kill
            }
        }
    }

    /// The grace after the first signal is over: what still runs is killed.
    pub(super) fn grace_over(&mut self) {
        if let Self::Stopping { signal, .. } = *self {
            *self = Self::Killed { signal };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_stops_a_second_kills_and_the_first_is_reported() {
        let now = Instant::now();
        let mut state = Interrupt::Running;
        assert_eq!((state.signal(), state.deadline()), (None, None));
        assert_eq!(state.on_signal(15, now), Response::Stop);
        assert_eq!(state.signal(), Some(15));
        assert_eq!(state.deadline(), Some(now + KILL_GRACE));
        assert_eq!(state.on_signal(2, now), Response::Kill);
        assert_eq!((state.signal(), state.deadline()), (Some(15), None));
        // A third: kill again, whatever is left.
        assert_eq!(state.on_signal(2, now), Response::Kill);
    }

    #[test]
    fn the_end_of_the_grace_kills_once() {
        let now = Instant::now();
        let mut state = Interrupt::Running;
        state.grace_over();
        assert_eq!(state, Interrupt::Running);
        state.on_signal(2, now);
        state.grace_over();
        assert_eq!(state, Interrupt::Killed { signal: 2 });
        assert_eq!(state.deadline(), None);
    }
}
