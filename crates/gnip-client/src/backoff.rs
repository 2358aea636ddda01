//! Reconnect policy: how long to wait before the next connection attempt,
//! by failure class. Pure; the connection task asks it after every failure.
//!
//! The numbers are spec section 3.3 (and hbc, Twitter's reference client):
//! network errors and stalls back off linearly by 250 ms up to 16 s; HTTP
//! errors worth retrying (5xx) exponentially from 5 s to 320 s; rate limits
//! (420, 429) exponentially from 60 s, because every further 429 extends the
//! server's penalty. Switching class resets the other counters. After an
//! established connection drops (a network-class failure), the first retry
//! is immediate. Counters reset
//! only once a connection has stayed healthy for a while, so a server that
//! accepts and then drops at once cannot pull the client into a tight loop.
//! Jitter keeps redundant and partitioned connections from reconnecting in
//! lock-step.

use std::time::Duration;

/// What kind of failure ended (or prevented) a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// TCP, DNS, TLS, reset, EOF, corrupt gzip, stall: linear backoff.
    Network,
    /// An HTTP error worth retrying (5xx, unexpected 4xx): exponential.
    Http,
    /// HTTP 420 or 429: exponential from a minute.
    RateLimited,
    /// A configuration error (401, 403, 404, 406, ...): never retried.
    Config,
}

impl FailureClass {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Network => "network",
            FailureClass::Http => "http",
            FailureClass::RateLimited => "rate_limited",
            FailureClass::Config => "config",
        }
    }
}

/// Backoff numbers; the defaults are the spec's. Tests shrink them.
#[derive(Debug, Clone, PartialEq)]
pub struct BackoffConfig {
    /// Linear step for network errors and stalls (250 ms).
    pub network_step: Duration,
    /// Cap for network errors (16 s).
    pub network_max: Duration,
    /// First delay after an HTTP error (5 s).
    pub http_initial: Duration,
    /// Cap for HTTP errors (320 s).
    pub http_max: Duration,
    /// First delay after a 420/429 (60 s).
    pub rate_limit_initial: Duration,
    /// Cap for rate limits. The spec documents none; 16 minutes (60 s
    /// doubled four times) keeps a misbehaving deployment from waiting for
    /// hours while still backing well off.
    pub rate_limit_max: Duration,
    /// Jitter as a fraction of the delay: the delay is drawn uniformly from
    /// `[d * (1 - jitter), d * (1 + jitter)]`. 0.2 by default.
    pub jitter: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            network_step: Duration::from_millis(250),
            network_max: Duration::from_secs(16),
            http_initial: Duration::from_secs(5),
            http_max: Duration::from_secs(320),
            rate_limit_initial: Duration::from_secs(60),
            rate_limit_max: Duration::from_secs(960),
            jitter: 0.2,
        }
    }
}

impl BackoffConfig {
    /// Every delay divided by `factor`, for tests and demos.
    pub fn scaled_down(factor: u32) -> BackoffConfig {
        let d = BackoffConfig::default();
        let f = factor.max(1);
        BackoffConfig {
            network_step: d.network_step / f,
            network_max: d.network_max / f,
            http_initial: d.http_initial / f,
            http_max: d.http_max / f,
            rate_limit_initial: d.rate_limit_initial / f,
            rate_limit_max: d.rate_limit_max / f,
            jitter: d.jitter,
        }
    }
}

/// The reconnect state of one connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    network: u32,
    http: u32,
    rate: u32,
    /// One immediate retry is allowed after an established connection
    /// drops.
    immediate: bool,
    /// The last delay handed out was the immediate one: the next
    /// established connection earns no new immediate retry until it has
    /// been healthy, so accept-then-drop cannot become a tight loop.
    last_immediate: bool,
}

impl Backoff {
    /// A fresh state: the first failure of a connection never made waits
    /// by its class.
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff {
            config,
            network: 0,
            http: 0,
            rate: 0,
            immediate: false,
            last_immediate: false,
        }
    }

    /// A connection was established (HTTP 200): its first drop may be
    /// retried at once, unless the previous retry already was immediate.
    pub fn connected(&mut self) {
        self.immediate = !self.last_immediate;
    }

    /// The connection has been healthy long enough: reset every counter and
    /// allow one immediate retry when it drops.
    pub fn healthy(&mut self) {
        self.network = 0;
        self.http = 0;
        self.rate = 0;
        self.immediate = true;
        self.last_immediate = false;
    }

    /// How many consecutive failures of `class` have been counted.
    pub fn attempts(&self, class: FailureClass) -> u32 {
        match class {
            FailureClass::Network => self.network,
            FailureClass::Http => self.http,
            FailureClass::RateLimited => self.rate,
            FailureClass::Config => 0,
        }
    }

    /// The delay before the next attempt after a failure of `class`, or
    /// `None` for a class that must not be retried. Takes a uniform draw in
    /// `[0, 1)` for the jitter so that the policy stays pure and testable.
    pub fn next_delay(&mut self, class: FailureClass, draw: f64) -> Option<Duration> {
        if class == FailureClass::Config {
            return None;
        }
        // Only a dropped connection earns the immediate retry. HTTP errors
        // and rate limits are never skipped: reconnecting at once after a
        // 429 is exactly what extends the penalty, and a "too many
        // connections" close would just evict a sibling connection.
        if self.immediate && class == FailureClass::Network {
            self.immediate = false;
            self.last_immediate = true;
            return Some(Duration::ZERO);
        }
        self.immediate = false;
        self.last_immediate = false;
        let c = &self.config;
        let base = match class {
            FailureClass::Network => {
                self.http = 0;
                self.rate = 0;
                self.network = self.network.saturating_add(1);
                c.network_step
                    .saturating_mul(self.network)
                    .min(c.network_max)
            }
            FailureClass::Http => {
                self.network = 0;
                self.rate = 0;
                self.http = self.http.saturating_add(1);
                exponential(c.http_initial, self.http, c.http_max)
            }
            FailureClass::RateLimited => {
                self.network = 0;
                self.http = 0;
                self.rate = self.rate.saturating_add(1);
                exponential(c.rate_limit_initial, self.rate, c.rate_limit_max)
            }
            FailureClass::Config => return None,
        };
        let j = c.jitter.clamp(0.0, 1.0);
        let factor = 1.0 - j + 2.0 * j * draw.clamp(0.0, 1.0);
        Some(base.mul_f64(factor))
    }

    /// True when the last delay of `class` has reached its cap: repeated
    /// capped reconnects need a human (spec 3.3).
    pub fn at_cap(&self, class: FailureClass) -> bool {
        let c = &self.config;
        match class {
            FailureClass::Network => c.network_step.saturating_mul(self.network) >= c.network_max,
            FailureClass::Http => exponential(c.http_initial, self.http, c.http_max) >= c.http_max,
            FailureClass::RateLimited => {
                exponential(c.rate_limit_initial, self.rate, c.rate_limit_max) >= c.rate_limit_max
            }
            FailureClass::Config => true,
        }
    }
}

/// `initial * 2^(n-1)`, capped.
fn exponential(initial: Duration, n: u32, max: Duration) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let shift = (n - 1).min(30);
    initial.saturating_mul(1 << shift).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        }
    }

    fn seq(b: &mut Backoff, class: FailureClass, n: usize) -> Vec<u64> {
        (0..n)
            .map(|_| b.next_delay(class, 0.5).expect("retryable").as_millis() as u64)
            .collect()
    }

    #[test]
    fn network_is_linear_to_16s() {
        let mut b = Backoff::new(no_jitter());
        let s = seq(&mut b, FailureClass::Network, 66);
        assert_eq!(&s[..4], &[250, 500, 750, 1000]);
        assert_eq!(s[63], 16_000);
        assert_eq!(s[65], 16_000);
        assert!(b.at_cap(FailureClass::Network));
    }

    #[test]
    fn http_is_exponential_5s_to_320s() {
        let mut b = Backoff::new(no_jitter());
        let s = seq(&mut b, FailureClass::Http, 9);
        assert_eq!(
            s,
            vec![
                5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 320_000, 320_000
            ]
        );
    }

    #[test]
    fn rate_limits_start_at_a_minute_and_double() {
        let mut b = Backoff::new(no_jitter());
        let s = seq(&mut b, FailureClass::RateLimited, 6);
        assert_eq!(s, vec![60_000, 120_000, 240_000, 480_000, 960_000, 960_000]);
    }

    #[test]
    fn config_errors_are_not_retried() {
        let mut b = Backoff::new(no_jitter());
        assert_eq!(b.next_delay(FailureClass::Config, 0.5), None);
    }

    #[test]
    fn switching_class_resets_the_others() {
        let mut b = Backoff::new(no_jitter());
        seq(&mut b, FailureClass::Http, 3);
        assert_eq!(seq(&mut b, FailureClass::Network, 1), vec![250]);
        assert_eq!(seq(&mut b, FailureClass::Http, 1), vec![5_000]);
    }

    #[test]
    fn first_retry_after_a_healthy_connection_is_immediate_once() {
        let mut b = Backoff::new(no_jitter());
        seq(&mut b, FailureClass::Network, 5);
        b.healthy();
        assert_eq!(seq(&mut b, FailureClass::Network, 3), vec![0, 250, 500]);
        b.healthy();
        assert_eq!(seq(&mut b, FailureClass::Http, 2), vec![5_000, 10_000]);
        b.healthy();
        assert_eq!(seq(&mut b, FailureClass::RateLimited, 1), vec![60_000]);
    }

    #[test]
    fn accept_then_drop_alternates_instead_of_looping() {
        let mut b = Backoff::new(no_jitter());
        let mut delays = Vec::new();
        for _ in 0..6 {
            b.connected();
            delays.push(
                b.next_delay(FailureClass::Network, 0.5)
                    .expect("retryable")
                    .as_millis(),
            );
        }
        assert_eq!(delays, vec![0, 250, 0, 500, 0, 750]);
    }

    #[test]
    fn jitter_stays_within_its_band() {
        let mut lo = Backoff::new(BackoffConfig::default());
        let mut hi = Backoff::new(BackoffConfig::default());
        let a = lo.next_delay(FailureClass::Http, 0.0).expect("retryable");
        let b = hi
            .next_delay(FailureClass::Http, 0.999_999)
            .expect("retryable");
        assert_eq!(a, Duration::from_secs(4));
        assert!(b > Duration::from_millis(5_999) && b <= Duration::from_secs(6));
    }

    #[test]
    fn scaled_down_keeps_the_shape() {
        let mut b = Backoff::new(BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::scaled_down(1000)
        });
        assert_eq!(seq(&mut b, FailureClass::Http, 3), vec![5, 10, 20]);
    }
}
