//! Token buckets: the send budget of each user (shared by every connection of the user and by
//! HTTP sends) and the bad-frame allowance of a connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket holding at most `capacity` tokens, refilled at `per_second`.
#[derive(Debug)]
pub struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(capacity: u32, per_second: f64, now: Instant) -> Self {
        Bucket {
            capacity: capacity as f64,
            per_second,
            tokens: capacity as f64,
            updated: now,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / self.per_second,
            ))
        }
    }
}

impl Bucket {
    /// Whether the bucket has refilled to its capacity by `now` (forgetting it loses nothing).
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.capacity
    }
}

/// Users whose buckets are kept before full ones are forgotten: the map holds the users that
/// sent recently, not every user ever seen.
const SEND_BUDGET_USERS_PRUNE_AT: usize = 4096;

/// The send budget of every user: `sends_burst_max` sends at once, refilled at
/// `sends_per_second_max`, shared by all of a user's WebSocket connections and HTTP sends — a
/// hostile client cannot multiply its rate by opening connections or switching to HTTP.
#[derive(Debug)]
pub struct SendBudget {
    capacity: u32,
    per_second: f64,
    users: Mutex<HashMap<String, Bucket>>,
}

impl SendBudget {
    /// A budget of `capacity` sends refilled at `per_second` for each user.
    pub fn new(capacity: u32, per_second: u32) -> Self {
        SendBudget {
            capacity,
            per_second: per_second as f64,
            users: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one send of `user`'s budget, or says how long until one is available.
    pub fn take(&self, user: &str, now: Instant) -> Result<(), Duration> {
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        if users.len() >= SEND_BUDGET_USERS_PRUNE_AT && !users.contains_key(user) {
            users.retain(|_, bucket| !bucket.is_full(now));
        }
        users
            .entry(user.to_owned())
            .or_insert_with(|| Bucket::new(self.capacity, self.per_second, now))
            .take(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(3, 10.0, start);
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).is_ok());
        assert!(bucket.take(start).is_ok());
        let wait = bucket.take(start).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::from_millis(90));
        assert!(bucket.take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn the_budget_is_per_user_and_forgets_full_buckets() {
        let start = Instant::now();
        let budget = SendBudget::new(2, 1);
        assert!(budget.take("ana", start).is_ok());
        assert!(budget.take("ana", start).is_ok());
        assert!(
            budget.take("ana", start).is_err(),
            "shared by every path of ana"
        );
        assert!(budget.take("olga", start).is_ok(), "others have their own");
        for n in 0..SEND_BUDGET_USERS_PRUNE_AT {
            budget.take(&format!("user-{n}"), start).unwrap();
        }
        let later = start + Duration::from_secs(5);
        budget.take("newcomer", later).unwrap();
        let kept = budget.users.lock().unwrap().len();
        assert!(kept < 10, "full buckets are forgotten: {kept} kept");
    }
}
