//! Telling transient faults from data errors, and retrying the former with backoff.
//!
//! Transient: connection loss and network errors, a database that is restarting or starting
//! (SQLSTATE class 08, 57P01-57P03), too many connections (53300), deadlocks and serialization
//! failures (40P01, 40001), lock timeouts (55P03), S3 5xx, throttling and timeouts, and a server-side
//! `curl` that could not connect or timed out. Data errors: SQLSTATE classes 22 and 23. Everything
//! else (a missing table, permissions, a bad setting) is permanent and fails at once.

use std::future::Future;
use std::time::Duration;

use crate::error::Error;

/// What a failure means for the file being loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultKind {
    /// Worth retrying: the same request may well succeed later.
    Transient,
    /// The data is at fault (SQLSTATE class 22 or 23): narrow it down to the offending rows.
    Data,
    /// Neither: retrying will not help.
    Permanent,
}

impl Error {
    /// Classifies the error; see the module docs.
    pub fn fault_kind(&self) -> FaultKind {
        match self {
            Error::Database {
                code: Some(code),
                message,
                ..
            } => classify_sqlstate(code, message),
            // No SQLSTATE: transient when the server could not be reached.
            Error::Database {
                code: None,
                transient,
                ..
            } => {
                if *transient {
                    FaultKind::Transient
                } else {
                    FaultKind::Permanent
                }
            }
            Error::S3 { transient, .. } => {
                if *transient {
                    FaultKind::Transient
                } else {
                    FaultKind::Permanent
                }
            }
            Error::Failed(inner) => inner.fault_kind(),
            _ => FaultKind::Permanent,
        }
    }
}

fn classify_sqlstate(code: &str, message: &str) -> FaultKind {
    match code {
        c if c.starts_with("08") => FaultKind::Transient,
        "40001" | "40P01" | "53300" | "55P03" | "57P01" | "57P02" | "57P03" | "58000" | "58030" => {
            FaultKind::Transient
        }
        // External routine exception: a failed `COPY FROM PROGRAM`. curl's exit code tells
        // whether the network failed (retry) or the object is gone or forbidden (permanent).
        "38000" => {
            let transient_exit = [
                "exit code 6",
                "exit code 7",
                "exit code 28",
                "exit code 35",
                "exit code 52",
                "exit code 56",
            ];
            if transient_exit.iter().any(|e| message.contains(e)) {
                FaultKind::Transient
            } else {
                FaultKind::Permanent
            }
        }
        c if c.starts_with("22") || c.starts_with("23") => FaultKind::Data,
        _ => FaultKind::Permanent,
    }
}

/// How transient faults are retried: exponential backoff with full jitter, bounded by attempts
/// and by total time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first delay; each next one doubles, up to `max_delay`.
    pub initial_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// No new attempt starts once this much time has passed since the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries.
    pub const NEVER: Self = Self {
        max_attempts: 1,
        initial_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_elapsed: Duration::ZERO,
    };

    /// The delay before attempt `attempt + 1` (`attempt` counts from 1), with full jitter.
    fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self.initial_delay.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        exp.min(self.max_delay).mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// Runs `op` until it succeeds, fails with anything but a transient fault, or the policy is
    /// spent. `what` names the operation in logs.
    pub(crate) async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, Error>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = tokio::time::Instant::now();
        let mut attempt = 1;
        loop {
            match op(attempt).await {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.fault_kind() == FaultKind::Transient
                        && attempt < self.max_attempts
                        && start.elapsed() < self.max_elapsed =>
                {
                    let delay = self.delay(attempt, jitter());
                    tracing::warn!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %e,
                        "{what}: transient failure, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A number in [0.5, 1) from the clock's low bits: jitter needs no cryptographic randomness.
fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Mix the bits (a multiplicative hash) so consecutive calls differ.
    let mixed = nanos.wrapping_mul(2_654_435_761) >> 8;
    0.5 + f64::from(mixed % 1_000_000) / 2_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(code: &str, message: &str) -> Error {
        Error::Database {
            context: "test".into(),
            message: message.into(),
            code: Some(code.into()),
            transient: false,
        }
    }

    #[test]
    fn classification() {
        assert_eq!(db("40001", "").fault_kind(), FaultKind::Transient);
        assert_eq!(db("57P01", "").fault_kind(), FaultKind::Transient);
        assert_eq!(db("08006", "").fault_kind(), FaultKind::Transient);
        assert_eq!(db("22P02", "").fault_kind(), FaultKind::Data);
        assert_eq!(db("23502", "").fault_kind(), FaultKind::Data);
        assert_eq!(db("42P01", "").fault_kind(), FaultKind::Permanent);
        let curl = |code| {
            db(
                "38000",
                &format!("program \"curl ...\" failed; child process exited with exit code {code}"),
            )
        };
        assert_eq!(curl(7).fault_kind(), FaultKind::Transient);
        assert_eq!(curl(22).fault_kind(), FaultKind::Permanent);
        assert_eq!(Error::Closed.fault_kind(), FaultKind::Permanent);
    }

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(p.delay(30, 1.0), Duration::from_secs(10));
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(400));
        let j = jitter();
        assert!((0.5..1.0).contains(&j));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_faults_only() {
        let p = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let mut calls = 0;
        let res: Result<u32, Error> = p
            .run("test", |attempt| {
                calls += 1;
                async move {
                    if attempt < 3 {
                        Err(db("40P01", "deadlock"))
                    } else {
                        Ok(attempt)
                    }
                }
            })
            .await;
        assert_eq!(res.expect("third attempt"), 3);
        assert_eq!(calls, 3);
        let mut calls = 0;
        let res: Result<(), Error> = p
            .run("test", |_| {
                calls += 1;
                async { Err(db("22P02", "bad")) }
            })
            .await;
        assert!(res.is_err());
        assert_eq!(calls, 1, "data errors are not retried");
        let mut calls = 0;
        let res: Result<(), Error> = p
            .run("test", |_| {
                calls += 1;
                async { Err(db("57P01", "restarting")) }
            })
            .await;
        assert!(res.is_err());
        assert_eq!(calls, 4, "bounded by max_attempts");
    }
}
