//! In-process rate limits for sign-in and password reset, per username and
//! per client address: a fixed window of attempts. Several processes each
//! keep their own count (documented in the README).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`; `Err(seconds)` when over the limit,
    /// with how long until the window ends.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut counts = self.counts.lock().expect("rate limiter lock");
        if counts.len() > 100_000 {
            // Bounded memory: forget expired windows.
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let left = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(left.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_after_the_limit_is_refused_with_the_time_left() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("ada").is_ok());
        }
        let wait = limiter.check("ada").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(limiter.check("bob").is_ok(), "other keys are counted apart");
    }
}
