//! After a failed attempt: retry the same deployment, fail over, or stop. One table, driven by
//! the failure class (DESIGN section 3), never by message text.

use std::time::Duration;

use tokio::time::Instant;

use super::table::Limits;
use crate::failure::{Failure, FailureClass};
use crate::resilience::backoff;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Try the same deployment again after this pause.
    Retry(Duration),
    /// Move on now; come back to this deployment at `Instant` if every other candidate fails
    /// and the deadline still allows (rate limits with Retry-After).
    Defer(Instant),
    /// Move on to the next candidate.
    FailOver,
    /// Return this failure to the caller: it is theirs (invalid request, content policy).
    Stop,
}

/// `retries` is how many times this deployment was already retried in this request.
pub fn decide(f: &Failure, retries: u32, limits: &Limits, now: Instant, deadline: Instant, jitter: f64) -> Decision {
    let fits = |pause: Duration| now + pause < deadline;
    match f.class {
        FailureClass::InvalidRequest | FailureClass::ContentFiltered => Decision::Stop,
        // Retrying a deployment that just failed like this cannot help within one request.
        FailureClass::Auth
        | FailureClass::DeploymentInvalid
        | FailureClass::ContextWindow
        | FailureClass::InvalidResponse
        | FailureClass::StreamBroken
        // A silent route is not retried: it would only spend the deadline again.
        | FailureClass::Timeout => Decision::FailOver,
        FailureClass::RateLimited => match f.retry_after {
            Some(after) if !f.is_quota_exhausted() && after <= limits.max_retry_wait && fits(after) => {
                Decision::Defer(now + after)
            }
            _ => Decision::FailOver,
        },
        FailureClass::Connect | FailureClass::Overloaded => {
            if retries >= limits.max_retries {
                return Decision::FailOver;
            }
            let pause = backoff::full_jitter(limits.backoff_base, limits.backoff_max, retries, jitter);
            if fits(pause) {
                Decision::Retry(pause)
            } else {
                Decision::FailOver
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(class: FailureClass) -> Failure {
        Failure::new(class, "x")
    }

    #[tokio::test(start_paused = true)]
    async fn table() {
        let l = Limits::BUILT_IN;
        let now = Instant::now();
        let dl = now + Duration::from_secs(60);
        assert_eq!(decide(&f(FailureClass::InvalidRequest), 0, &l, now, dl, 0.5), Decision::Stop);
        assert_eq!(decide(&f(FailureClass::ContentFiltered), 0, &l, now, dl, 0.5), Decision::Stop);
        for c in [FailureClass::Auth, FailureClass::Timeout, FailureClass::ContextWindow, FailureClass::InvalidResponse]
        {
            assert_eq!(decide(&f(c), 0, &l, now, dl, 0.5), Decision::FailOver, "{c}");
        }
        assert!(matches!(decide(&f(FailureClass::Overloaded), 0, &l, now, dl, 0.5), Decision::Retry(_)));
        assert_eq!(decide(&f(FailureClass::Overloaded), 1, &l, now, dl, 0.5), Decision::FailOver);
        assert!(matches!(decide(&f(FailureClass::Connect), 0, &l, now, dl, 0.5), Decision::Retry(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_defer_only_when_the_wait_fits() {
        let l = Limits::BUILT_IN;
        let now = Instant::now();
        let dl = now + Duration::from_secs(5);
        let rl = |s| f(FailureClass::RateLimited).retry_after(Some(Duration::from_secs(s)));
        assert_eq!(decide(&rl(2), 0, &l, now, dl, 0.5), Decision::Defer(now + Duration::from_secs(2)));
        assert_eq!(decide(&rl(6), 0, &l, now, dl, 0.5), Decision::FailOver, "past the deadline");
        let long = now + Duration::from_secs(3600);
        assert_eq!(decide(&rl(30), 0, &l, now, long, 0.5), Decision::FailOver, "over max_retry_wait");
        assert_eq!(decide(&f(FailureClass::RateLimited), 0, &l, now, dl, 0.5), Decision::FailOver, "no hint");
        let quota = rl(1).detail("quota_exhausted");
        assert_eq!(decide(&quota, 0, &l, now, dl, 0.5), Decision::FailOver);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_pause_must_fit_the_deadline() {
        let l =
            Limits { backoff_base: Duration::from_secs(10), backoff_max: Duration::from_secs(10), ..Limits::BUILT_IN };
        let now = Instant::now();
        let dl = now + Duration::from_secs(5);
        assert_eq!(decide(&f(FailureClass::Overloaded), 0, &l, now, dl, 0.99), Decision::FailOver);
    }
}
