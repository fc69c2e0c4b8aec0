//! The Lambda invocation's deadline, as the steps that stream documents read it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// When the Lambda invocation must have returned.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline (tests, local runs).
    pub fn none() -> Self {
        Self(None)
    }

    /// A deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Self(Some(Instant::now() + after))
    }

    /// The Lambda context's deadline, in milliseconds since the Unix epoch.
    ///
    /// A value too small to be such a time (before 2001) is read as the time left itself: `cargo lambda
    /// watch` sends the function's timeout (`600000`) in `Lambda-Runtime-Deadline-Ms`.
    pub fn from_epoch_millis(millis: u64) -> Self {
        const PLAUSIBLE_EPOCH_MILLIS: u64 = 1_000_000_000_000;
        if millis < PLAUSIBLE_EPOCH_MILLIS {
            return Self::after(Duration::from_millis(millis));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let left = Duration::from_millis(millis).saturating_sub(now);
        Self::after(left)
    }

    /// Time left before the deadline, less `margin`; `None` without a deadline.
    pub fn remaining(&self, margin: Duration) -> Option<Duration> {
        self.0
            .map(|at| at.saturating_duration_since(Instant::now()).saturating_sub(margin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_read_as_epoch_millis_or_as_time_left_from_a_local_emulator() {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64;
        let left = Deadline::from_epoch_millis(now + 60_000)
            .remaining(Duration::ZERO)
            .expect("some");
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
        let local = Deadline::from_epoch_millis(600_000)
            .remaining(Duration::ZERO)
            .expect("some");
        assert!(local > Duration::from_secs(590));
        assert_eq!(
            Deadline::from_epoch_millis(now - 1).remaining(Duration::ZERO),
            Some(Duration::ZERO)
        );
    }
}
