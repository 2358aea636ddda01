//! Compliance events for the compliance streams, about posts and authors
//! the simulator has actually sent, in the enterprise (native) shapes and
//! the v2 `data`-wrapped shapes.

use std::collections::VecDeque;
use std::sync::Mutex;

use fastrand::Rng;

use crate::time::iso_millis;

/// Which compliance stream an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// Enterprise Compliance Firehose: post and user events, native shapes.
    Enterprise,
    /// `/2/tweets/compliance/stream`.
    V2Tweets,
    /// `/2/users/compliance/stream`.
    V2Users,
}

/// Recently sent posts `(post id, author id)`, for compliance events to
/// refer to. Bounded: the oldest are forgotten.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    ring: Mutex<VecDeque<(u64, u64)>>,
}

const RECENT_CAP: usize = 65_536;

impl Recent {
    pub(crate) fn push(&self, items: impl IntoIterator<Item = (u64, u64)>) {
        let mut g = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        for it in items {
            if g.len() == RECENT_CAP {
                g.pop_front();
            }
            g.push_back(it);
        }
    }

    pub(crate) fn pick(&self, rng: &mut Rng) -> Option<(u64, u64)> {
        let g = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_empty() {
            None
        } else {
            g.get(rng.usize(..g.len())).copied()
        }
    }
}

const USER_EVENTS: [&str; 7] = [
    "user_delete",
    "user_undelete",
    "user_protect",
    "user_unprotect",
    "user_suspend",
    "user_unsuspend",
    "user_withheld",
];
const COUNTRIES: [&str; 5] = ["DE", "FR", "IN", "TR", "RU"];

/// One event as a JSON line (without delimiter), about `subject` when a
/// post is known, else about `author`. `None` when the flavour needs a post
/// and none has been sent yet.
pub(crate) fn event(
    rng: &mut Rng,
    flavor: Flavor,
    subject: Option<(u64, u64)>,
    author: u64,
    now: u64,
) -> Option<String> {
    let ts = now.to_string();
    let at = iso_millis(now);
    let country = COUNTRIES[rng.usize(..COUNTRIES.len())];
    match flavor {
        Flavor::Enterprise => {
            if let Some((post, user)) = subject.filter(|_| rng.u8(..10) < 7) {
                let status = format!(
                    "{{\"id\":{post},\"id_str\":\"{post}\",\"user_id\":{user},\"user_id_str\":\"{user}\"}}"
                );
                return Some(match rng.u8(..10) {
                    0..=5 => {
                        format!("{{\"delete\":{{\"status\":{status},\"timestamp_ms\":\"{ts}\"}}}}")
                    }
                    6 => format!(
                        "{{\"status_withheld\":{{\"status\":{status},\"withheld_in_countries\":[\"{country}\"],\"timestamp_ms\":\"{ts}\"}}}}"
                    ),
                    7 => format!("{{\"drop\":{{\"status\":{status},\"timestamp_ms\":\"{ts}\"}}}}"),
                    8 => {
                        format!("{{\"undrop\":{{\"status\":{status},\"timestamp_ms\":\"{ts}\"}}}}")
                    }
                    _ => format!(
                        "{{\"scrub_geo\":{{\"user_id\":{user},\"user_id_str\":\"{user}\",\"up_to_status_id\":{post},\"up_to_status_id_str\":\"{post}\",\"timestamp_ms\":\"{ts}\"}}}}"
                    ),
                });
            }
            let user = subject.map_or(author, |(_, u)| u);
            let kind = USER_EVENTS[rng.usize(..USER_EVENTS.len())];
            Some(if kind == "user_withheld" {
                format!(
                    "{{\"user_withheld\":{{\"user\":{{\"id\":{user},\"id_str\":\"{user}\"}},\"withheld_in_countries\":[\"{country}\"],\"timestamp_ms\":\"{ts}\"}}}}"
                )
            } else {
                format!("{{\"{kind}\":{{\"id\":{user},\"timestamp_ms\":\"{ts}\"}}}}")
            })
        }
        Flavor::V2Tweets => {
            let (post, user) = subject?;
            let tweet = format!("{{\"id\":\"{post}\",\"author_id\":\"{user}\"}}");
            Some(match rng.u8(..10) {
                0..=6 => format!(
                    "{{\"data\":{{\"delete\":{{\"tweet\":{tweet},\"event_at\":\"{at}\"}}}}}}"
                ),
                7 => format!(
                    "{{\"data\":{{\"withheld\":{{\"tweet\":{tweet},\"withheld_in_countries\":[\"{country}\"],\"event_at\":\"{at}\"}}}}}}"
                ),
                8 => {
                    format!("{{\"data\":{{\"drop\":{{\"tweet\":{tweet},\"event_at\":\"{at}\"}}}}}}")
                }
                _ => format!(
                    "{{\"data\":{{\"undrop\":{{\"tweet\":{tweet},\"event_at\":\"{at}\"}}}}}}"
                ),
            })
        }
        Flavor::V2Users => {
            let user = subject.map_or(author, |(_, u)| u);
            let kind = USER_EVENTS[rng.usize(..USER_EVENTS.len())];
            Some(if kind == "user_withheld" {
                format!(
                    "{{\"data\":{{\"user_withheld\":{{\"user\":{{\"id\":\"{user}\"}},\"withheld_in_countries\":[\"{country}\"],\"event_at\":\"{at}\"}}}}}}"
                )
            } else {
                format!(
                    "{{\"data\":{{\"{kind}\":{{\"user\":{{\"id\":\"{user}\"}},\"event_at\":\"{at}\"}}}}}}"
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_refer_to_the_given_post_and_parse() {
        let mut rng = Rng::with_seed(3);
        let mut deletes = 0;
        for _ in 0..200 {
            let e = event(
                &mut rng,
                Flavor::Enterprise,
                Some((111, 222)),
                9,
                1_700_000_000_000,
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&e).unwrap();
            let obj = v.as_object().unwrap();
            assert_eq!(obj.len(), 1);
            if let Some(d) = obj.get("delete") {
                assert_eq!(d["status"]["id_str"], "111");
                assert_eq!(d["status"]["user_id_str"], "222");
                deletes += 1;
            } else if obj.keys().next().unwrap().starts_with("user_") {
                assert!(e.contains("222"), "{e}");
            }
        }
        assert!(deletes > 50);
        let v2 = event(&mut rng, Flavor::V2Tweets, Some((111, 222)), 9, 0).unwrap();
        let v: serde_json::Value = serde_json::from_str(&v2).unwrap();
        assert!(v["data"].as_object().unwrap().values().next().unwrap()["tweet"]["id"] == "111");
        assert!(event(&mut rng, Flavor::V2Tweets, None, 9, 0).is_none());
        let u = event(&mut rng, Flavor::V2Users, None, 9, 0).unwrap();
        assert!(u.contains("\"id\":\"9\""));
    }

    #[test]
    fn recent_is_bounded() {
        let r = Recent::default();
        r.push((0..(RECENT_CAP as u64 + 10)).map(|i| (i, i)));
        let mut rng = Rng::with_seed(1);
        assert!(r.pick(&mut rng).unwrap().0 >= 10);
    }
}
