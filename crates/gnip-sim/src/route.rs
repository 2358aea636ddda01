//! Routing: which endpoint a request path names, with its stream, partition
//! and time parameters validated. The URL shapes are the real ones:
//! `/stream/{product}/accounts/{A}/publishers/twitter/{L}.json`,
//! `/replay/{product}/...`, `/rules/powertrack[-replay]/...`, and the v2
//! paths under `/2/`.

use crate::config::Format;
use crate::http::Request;
use crate::time::{now_ms, parse_iso, parse_replay_date};

/// A stream product; with a partition it names one timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Product {
    PowerTrack,
    Decahose,
    Firehose,
    Compliance,
    V2Filtered,
    V2Sample,
    V2Sample10,
    V2Firehose,
    V2FirehoseLang(&'static str),
    V2TweetCompliance,
    V2UserCompliance,
}

impl Product {
    pub(crate) fn is_v2(self) -> bool {
        !matches!(
            self,
            Product::PowerTrack | Product::Decahose | Product::Firehose | Product::Compliance
        )
    }

    /// Number of partitions, for the streams that require `partition`.
    pub(crate) fn partitions(self) -> Option<u16> {
        match self {
            Product::Decahose | Product::V2Sample10 => Some(2),
            Product::Firehose | Product::V2Firehose | Product::V2FirehoseLang(_) => Some(20),
            Product::Compliance => Some(8),
            Product::V2TweetCompliance | Product::V2UserCompliance => Some(4),
            Product::PowerTrack | Product::V2Filtered | Product::V2Sample => None,
        }
    }

    pub(crate) fn name(self) -> String {
        match self {
            Product::PowerTrack => "powertrack".into(),
            Product::Decahose => "sample10".into(),
            Product::Firehose => "firehose".into(),
            Product::Compliance => "compliance".into(),
            Product::V2Filtered => "v2-filtered".into(),
            Product::V2Sample => "v2-sample".into(),
            Product::V2Sample10 => "v2-sample10".into(),
            Product::V2Firehose => "v2-firehose".into(),
            Product::V2FirehoseLang(l) => format!("v2-firehose-{l}"),
            Product::V2TweetCompliance => "v2-tweets-compliance".into(),
            Product::V2UserCompliance => "v2-users-compliance".into(),
        }
    }

    pub(crate) fn compliance(self) -> bool {
        matches!(
            self,
            Product::Compliance | Product::V2TweetCompliance | Product::V2UserCompliance
        )
    }

    /// The record format served on this product.
    pub(crate) fn format(self, enterprise: Format) -> Format {
        if self.is_v2() { Format::V2 } else { enterprise }
    }

    fn enterprise(segment: &str) -> Option<Product> {
        match segment {
            "powertrack" => Some(Product::PowerTrack),
            "sample10" | "decahose" => Some(Product::Decahose),
            "firehose" => Some(Product::Firehose),
            "compliance" => Some(Product::Compliance),
            _ => None,
        }
    }
}

/// What part of the timeline a stream request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Live data, first re-sending the last `backfill_minutes` minutes.
    Live { backfill_minutes: u32 },
    /// Recovery: the window `[start, end)` (ms), then "Recovery Request Completed".
    Recovery { start: u64, end: u64 },
    /// Replay: the window `[from, to)` (ms) over all partitions, then
    /// "Replay Request Completed".
    Replay { from: u64, to: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamRoute {
    pub product: Product,
    /// 0 for unpartitioned streams and replays.
    pub partition: u16,
    pub mode: Mode,
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Stream(StreamRoute),
    /// A stream URL with bad parameters: status and message.
    StreamError {
        v2: bool,
        status: u16,
        message: String,
    },
    /// PowerTrack rules; `replay` for the Replay stream's own rule set.
    Rules {
        replay: bool,
        op: RulesOp,
    },
    V2Rules,
    V2RuleCounts,
    Accounting,
    Faults,
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RulesOp {
    /// `{label}.json`: list, add, or a `_method` override.
    Base,
    /// `{label}/validation.json`.
    Validate,
    /// `{label}/rules/{id}.json`.
    One(String),
}

/// Routes `req` for account `account` and label `label`.
pub(crate) fn route(req: &Request, account: &str, label: &str) -> Route {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["_sim", "accounting"] => Route::Accounting,
        ["_sim", "faults"] => Route::Faults,
        [
            feature @ ("stream" | "replay"),
            product,
            "accounts",
            a,
            "publishers",
            "twitter",
            file,
        ] if *a == account && file.strip_suffix(".json") == Some(label) => {
            match Product::enterprise(product) {
                Some(p) => enterprise_stream(req, p, *feature == "replay"),
                None => Route::NotFound,
            }
        }
        [
            "rules",
            kind @ ("powertrack" | "powertrack-replay"),
            "accounts",
            a,
            "publishers",
            "twitter",
            rest @ ..,
        ] if *a == account => {
            let replay = *kind == "powertrack-replay";
            let label_json = format!("{label}.json");
            let op = match rest {
                [f] if *f == label_json => RulesOp::Base,
                [l, "validation.json"] if *l == label => RulesOp::Validate,
                [l, "rules", id] if *l == label => match id.strip_suffix(".json") {
                    Some(id) => RulesOp::One(id.to_string()),
                    None => return Route::NotFound,
                },
                _ => return Route::NotFound,
            };
            Route::Rules { replay, op }
        }
        ["2", "tweets", "search", "stream", "rules"] => Route::V2Rules,
        ["2", "tweets", "search", "stream", "rules", "counts"] => Route::V2RuleCounts,
        ["2", "tweets", "search", "stream"] => v2_stream(req, Product::V2Filtered),
        ["2", "tweets", "sample", "stream"] => v2_stream(req, Product::V2Sample),
        ["2", "tweets", "sample10", "stream"] => v2_stream(req, Product::V2Sample10),
        ["2", "tweets", "firehose", "stream"] => v2_stream(req, Product::V2Firehose),
        ["2", "tweets", "firehose", "stream", "lang", lang] => match *lang {
            "en" => v2_stream(req, Product::V2FirehoseLang("en")),
            "ja" => v2_stream(req, Product::V2FirehoseLang("ja")),
            "ko" => v2_stream(req, Product::V2FirehoseLang("ko")),
            "pt" => v2_stream(req, Product::V2FirehoseLang("pt")),
            _ => Route::NotFound,
        },
        ["2", "tweets", "compliance", "stream"] => v2_stream(req, Product::V2TweetCompliance),
        ["2", "users", "compliance", "stream"] => v2_stream(req, Product::V2UserCompliance),
        _ => Route::NotFound,
    }
}

fn bad(v2: bool, message: String) -> Route {
    Route::StreamError {
        v2,
        status: 400,
        message,
    }
}

fn partition(req: &Request, product: Product) -> Result<u16, String> {
    let Some(max) = product.partitions() else {
        return match req.param("partition") {
            Some(_) => Err(format!(
                "The {} stream is not partitioned; remove 'partition'.",
                product.name()
            )),
            None => Ok(0),
        };
    };
    match req.param("partition") {
        None => Err(format!(
            "Query parameter 'partition' is required: 1 to {max}."
        )),
        Some(p) => match p.parse::<u16>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("Invalid partition {p:?}: expected 1 to {max}.")),
        },
    }
}

fn backfill(req: &Request, name: &str) -> Result<u32, String> {
    match req.param(name) {
        None => Ok(0),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n <= 5 => Ok(n),
            _ => Err(format!(
                "Invalid {name} {v:?}: expected a whole number of minutes, 0 to 5."
            )),
        },
    }
}

fn window(req: &Request, start: &str, end: &str) -> Result<Option<(u64, u64)>, String> {
    let (s, e) = (req.param(start), req.param(end));
    let Some(s) = s else {
        return match e {
            Some(_) => Err(format!("'{end}' requires '{start}'.")),
            None => Ok(None),
        };
    };
    let s = parse_iso(s)
        .ok_or_else(|| format!("Invalid {start} {s:?}: expected YYYY-MM-DDTHH:mm:ssZ."))?;
    let e = match e {
        Some(e) => parse_iso(e)
            .ok_or_else(|| format!("Invalid {end} {e:?}: expected YYYY-MM-DDTHH:mm:ssZ."))?,
        None => now_ms(),
    };
    if e <= s {
        return Err(format!("'{end}' must be after '{start}'."));
    }
    if s + 24 * 3_600_000 < now_ms() {
        return Err(format!("'{start}' must be within the last 24 hours."));
    }
    Ok(Some((s, e)))
}

fn enterprise_stream(req: &Request, product: Product, replay: bool) -> Route {
    if replay {
        let date = |name: &str| {
            let v = req.param(name).unwrap_or("");
            parse_replay_date(v).ok_or_else(|| {
                format!("Invalid date format for query parameter '{name}'. Expected format is 'yyyyMMddHHmm'. Got {v:?}.")
            })
        };
        return match (date("fromDate"), date("toDate")) {
            (Ok(from), Ok(to)) if from < to => Route::Stream(StreamRoute {
                product,
                partition: 0,
                mode: Mode::Replay { from, to },
            }),
            (Ok(_), Ok(_)) => Route::StreamError {
                v2: false,
                status: 406,
                message: "'toDate' must be after 'fromDate'.".into(),
            },
            (Err(m), _) | (_, Err(m)) => Route::StreamError {
                v2: false,
                status: 406,
                message: m,
            },
        };
    }
    let partition = match partition(req, product) {
        Ok(p) => p,
        Err(m) => return bad(false, m),
    };
    let mode = match (
        window(req, "startTime", "endTime"),
        backfill(req, "backfillMinutes"),
    ) {
        (Err(m), _) | (_, Err(m)) => return bad(false, m),
        (Ok(Some((start, end))), _) => Mode::Recovery { start, end },
        (Ok(None), Ok(b)) => Mode::Live {
            backfill_minutes: b,
        },
    };
    Route::Stream(StreamRoute {
        product,
        partition,
        mode,
    })
}

fn v2_stream(req: &Request, product: Product) -> Route {
    let partition = match partition(req, product) {
        Ok(p) => p,
        Err(m) => return bad(true, m),
    };
    let recovery = if product == Product::V2Sample {
        if req.param("start_time").is_some() {
            return bad(
                true,
                "The sample stream does not support recovery ('start_time').".into(),
            );
        }
        Ok(None)
    } else {
        window(req, "start_time", "end_time")
    };
    let mode = match (recovery, backfill(req, "backfill_minutes")) {
        (Err(m), _) | (_, Err(m)) => return bad(true, m),
        (Ok(Some((start, end))), _) => Mode::Recovery { start, end },
        (Ok(None), Ok(b)) => Mode::Live {
            backfill_minutes: b,
        },
    };
    Route::Stream(StreamRoute {
        product,
        partition,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn req(target: &str) -> Request {
        let raw = format!("GET {target} HTTP/1.1\r\n\r\n");
        let mut rd = tokio::io::join(raw.as_bytes(), tokio::io::sink());
        crate::http::read_request(&mut rd, &mut Vec::new())
            .await
            .ok()
            .flatten()
            .expect("a request")
    }

    async fn r(target: &str) -> Route {
        route(&req(target).await, "acme", "prod")
    }

    #[tokio::test]
    async fn enterprise_urls_route_with_their_partition() {
        let base = "/stream/sample10/accounts/acme/publishers/twitter/prod.json";
        assert_eq!(
            r(&format!("{base}?partition=2&backfillMinutes=3")).await,
            Route::Stream(StreamRoute {
                product: Product::Decahose,
                partition: 2,
                mode: Mode::Live {
                    backfill_minutes: 3
                }
            })
        );
        for bad in [
            "",
            "?partition=3",
            "?partition=0",
            "?partition=x",
            "?partition=1&backfillMinutes=6",
        ] {
            assert!(
                matches!(
                    r(&format!("{base}{bad}")).await,
                    Route::StreamError {
                        status: 400,
                        v2: false,
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            r("/stream/firehose/accounts/acme/publishers/twitter/prod.json?partition=20").await,
            Route::Stream(_)
        ));
        assert!(matches!(
            r("/stream/compliance/accounts/acme/publishers/twitter/prod.json?partition=9").await,
            Route::StreamError { .. }
        ));
        assert_eq!(
            r("/stream/powertrack/accounts/other/publishers/twitter/prod.json").await,
            Route::NotFound
        );
        assert_eq!(
            r("/stream/nope/accounts/acme/publishers/twitter/prod.json").await,
            Route::NotFound
        );
        assert_eq!(
            r("/stream/powertrack/accounts/acme/publishers/twitter/dev.json").await,
            Route::NotFound
        );
    }

    #[tokio::test]
    async fn recovery_and_replay_windows_are_parsed() {
        let now = now_ms();
        let start = crate::time::iso_millis(now - 600_000);
        let t = format!(
            "/stream/powertrack/accounts/acme/publishers/twitter/prod.json?startTime={start}"
        );
        match r(&t).await {
            Route::Stream(StreamRoute {
                mode: Mode::Recovery { start: s, end },
                ..
            }) => {
                assert_eq!(s, now - 600_000);
                assert!(end >= now);
            }
            other => panic!("{other:?}"),
        }
        let old = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json?startTime=2001-01-01T00:00:00Z";
        assert!(matches!(
            r(old).await,
            Route::StreamError { status: 400, .. }
        ));
        let replay = "/replay/powertrack/accounts/acme/publishers/twitter/prod.json?fromDate=202401010000&toDate=202401010100";
        assert!(matches!(
            r(replay).await,
            Route::Stream(StreamRoute {
                mode: Mode::Replay { .. },
                ..
            })
        ));
        let bad = "/replay/powertrack/accounts/acme/publishers/twitter/prod.json?fromDate=2024-01-01&toDate=202401010100";
        match r(bad).await {
            Route::StreamError {
                status: 406,
                message,
                ..
            } => assert!(message.contains("fromDate")),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn v2_and_rules_paths_route() {
        assert!(matches!(
            r("/2/tweets/search/stream?backfill_minutes=2").await,
            Route::Stream(StreamRoute {
                product: Product::V2Filtered,
                ..
            })
        ));
        assert!(matches!(
            r("/2/tweets/firehose/stream/lang/ja?partition=4").await,
            Route::Stream(StreamRoute {
                product: Product::V2FirehoseLang("ja"),
                partition: 4,
                ..
            })
        ));
        assert!(matches!(
            r("/2/tweets/compliance/stream?partition=5").await,
            Route::StreamError { v2: true, .. }
        ));
        assert!(matches!(
            r("/2/tweets/sample/stream?start_time=2024-01-01T00:00:00Z").await,
            Route::StreamError { v2: true, .. }
        ));
        assert_eq!(r("/2/tweets/search/stream/rules").await, Route::V2Rules);
        assert_eq!(
            r("/rules/powertrack/accounts/acme/publishers/twitter/prod.json").await,
            Route::Rules {
                replay: false,
                op: RulesOp::Base
            }
        );
        assert_eq!(
            r("/rules/powertrack-replay/accounts/acme/publishers/twitter/prod/validation.json")
                .await,
            Route::Rules {
                replay: true,
                op: RulesOp::Validate
            }
        );
        assert_eq!(
            r("/rules/powertrack/accounts/acme/publishers/twitter/prod/rules/42.json").await,
            Route::Rules {
                replay: false,
                op: RulesOp::One("42".into())
            }
        );
        assert_eq!(r("/_sim/accounting").await, Route::Accounting);
        assert_eq!(r("/2/nothing").await, Route::NotFound);
    }
}
