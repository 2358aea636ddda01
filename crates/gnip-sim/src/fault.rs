//! Fault injection: the plan (parsed from the fixed `--fault` syntax), and
//! the per-connection decision taken from it when a stream connects.
//!
//! Syntax, comma-separated: `status=503x3`, `status=401`, `drop-every=1000`,
//! `drop-every=1000:rst`, `stall-after=500`, `forced-disconnect-after=N`,
//! `malformed-every=N`, `truncate-gzip-after=N`, `split-chunks`,
//! `trickle=BYTES/MS`; each optionally suffixed with `@N` (only the N-th
//! stream connection attempt, 1-based, counted over the whole simulator) or
//! `@N-M` (attempts N to M). Without a suffix a fault applies to every
//! connection, except `status=CODExK`, which applies to the next K connects.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One kind of misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refuse the connect with this HTTP status. `count` (from `xK`) limits
    /// an unsuffixed fault to the next K connects.
    Status {
        /// The HTTP status code (400..=599).
        code: u16,
        /// How many connects, when given as `xK`.
        count: Option<u32>,
    },
    /// Cut the connection after every `records` live records (records
    /// re-sent by backfill do not count, so a client always makes progress),
    /// in the middle of the next record: FIN, or RST when `rst`.
    DropEvery {
        /// Records per connection before the cut.
        records: u64,
        /// Reset (SO_LINGER 0) instead of a clean FIN.
        rst: bool,
    },
    /// After `records` records, write nothing at all (no heartbeats either)
    /// until the client gives up.
    StallAfter {
        /// Records before the stall.
        records: u64,
    },
    /// After `records` records, send a Forced Disconnect system message and
    /// close the body cleanly.
    ForcedDisconnectAfter {
        /// Records before the message.
        records: u64,
    },
    /// After every `records`-th record, an extra line that is not valid JSON.
    MalformedEvery {
        /// Period in records.
        records: u64,
    },
    /// After `records` records, end the HTTP body in the middle of the gzip
    /// member (part of the next record, then the zero-length chunk).
    TruncateGzipAfter {
        /// Records before the cut.
        records: u64,
    },
    /// Split the body into HTTP chunks at random byte offsets, so that
    /// records straddle chunk boundaries.
    SplitChunks,
    /// Write at most `bytes` bytes every `every_ms` milliseconds.
    Trickle {
        /// Bytes per step.
        bytes: usize,
        /// Milliseconds between steps.
        every_ms: u64,
    },
}

/// Which connection attempts a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every attempt (for `status=CODExK`: the next K).
    Always,
    /// Only attempt N (1-based).
    Attempt(u64),
    /// Attempts N to M inclusive.
    Range(u64, u64),
}

impl Applies {
    fn covers(self, attempt: u64) -> bool {
        match self {
            Applies::Always => true,
            Applies::Attempt(n) => attempt == n,
            Applies::Range(a, b) => (a..=b).contains(&attempt),
        }
    }
}

/// A fault and the attempts it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRule {
    /// What goes wrong.
    pub fault: Fault,
    /// When.
    pub applies: Applies,
}

/// A set of faults that combine; see the module documentation for syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The faults, in the order given.
    pub rules: Vec<FaultRule>,
}

/// A fault specification that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault {spec:?}: {reason}")]
pub struct FaultParseError {
    /// The offending item.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FaultPlan {
    /// Parses a comma-separated list of faults. An empty string is no fault.
    ///
    /// # Errors
    ///
    /// [`FaultParseError`] naming the first item that does not parse.
    pub fn parse(spec: &str) -> Result<FaultPlan, FaultParseError> {
        let mut rules = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            rules.push(parse_rule(item).map_err(|reason| FaultParseError {
                spec: item.to_string(),
                reason,
            })?);
        }
        Ok(FaultPlan { rules })
    }

    /// Whether the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl FromStr for FaultPlan {
    type Err = FaultParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultPlan::parse(s)
    }
}

fn need<'a>(name: &str, arg: Option<&'a str>) -> Result<&'a str, String> {
    arg.ok_or_else(|| format!("{name} needs a value"))
}

fn parse_rule(item: &str) -> Result<FaultRule, String> {
    let (body, applies) = match item.rsplit_once('@') {
        Some((body, when)) => (body, parse_applies(when)?),
        None => (item, Applies::Always),
    };
    let (name, arg) = match body.split_once('=') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (body.trim(), None),
    };
    let count = |s: &str| -> Result<u64, String> {
        match s.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{s:?} is not a positive whole number")),
        }
    };
    let fault = match name {
        "status" => {
            let arg = need(name, arg)?;
            let (code, times) = match arg.split_once(['x', 'X']) {
                Some((c, k)) => (c, Some(k)),
                None => (arg, None),
            };
            let code: u16 = code
                .parse()
                .map_err(|_| format!("{code:?} is not an HTTP status"))?;
            if !(400..=599).contains(&code) {
                return Err(format!("status {code} is not an error status (400..=599)"));
            }
            let count = times
                .map(|k| {
                    count(k).and_then(|k| u32::try_from(k).map_err(|_| "count too large".into()))
                })
                .transpose()?;
            Fault::Status { code, count }
        }
        "drop-every" => {
            let arg = need(name, arg)?;
            let (n, rst) = match arg.split_once(':') {
                Some((n, "rst")) => (n, true),
                Some((n, "fin")) => (n, false),
                Some((_, how)) => return Err(format!("{how:?} is neither fin nor rst")),
                None => (arg, false),
            };
            Fault::DropEvery {
                records: count(n)?,
                rst,
            }
        }
        "stall-after" => Fault::StallAfter {
            records: count(need(name, arg)?)?,
        },
        "forced-disconnect-after" => Fault::ForcedDisconnectAfter {
            records: count(need(name, arg)?)?,
        },
        "malformed-every" => Fault::MalformedEvery {
            records: count(need(name, arg)?)?,
        },
        "truncate-gzip-after" => Fault::TruncateGzipAfter {
            records: count(need(name, arg)?)?,
        },
        "split-chunks" => {
            if arg.is_some() {
                return Err("split-chunks takes no value".into());
            }
            Fault::SplitChunks
        }
        "trickle" => {
            let arg = need(name, arg)?;
            let (b, ms) = arg.split_once('/').ok_or("expected BYTES/MS")?;
            Fault::Trickle {
                bytes: usize::try_from(count(b)?).map_err(|_| "too many bytes")?,
                every_ms: count(ms)?,
            }
        }
        other => return Err(format!("unknown fault {other:?}")),
    };
    Ok(FaultRule { fault, applies })
}

fn parse_applies(when: &str) -> Result<Applies, String> {
    let n = |s: &str| match s.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("attempt {s:?} is not a positive whole number")),
    };
    match when.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (n(a)?, n(b)?);
            if a > b {
                return Err(format!("attempt range {a}-{b} is empty"));
            }
            Ok(Applies::Range(a, b))
        }
        None => Ok(Applies::Attempt(n(when)?)),
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fault::Status {
                code,
                count: Some(k),
            } => write!(f, "status={code}x{k}"),
            Fault::Status { code, count: None } => write!(f, "status={code}"),
            Fault::DropEvery { records, rst: true } => write!(f, "drop-every={records}:rst"),
            Fault::DropEvery {
                records,
                rst: false,
            } => write!(f, "drop-every={records}"),
            Fault::StallAfter { records } => write!(f, "stall-after={records}"),
            Fault::ForcedDisconnectAfter { records } => {
                write!(f, "forced-disconnect-after={records}")
            }
            Fault::MalformedEvery { records } => write!(f, "malformed-every={records}"),
            Fault::TruncateGzipAfter { records } => write!(f, "truncate-gzip-after={records}"),
            Fault::SplitChunks => f.write_str("split-chunks"),
            Fault::Trickle { bytes, every_ms } => write!(f, "trickle={bytes}/{every_ms}"),
        }
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", r.fault)?;
            match r.applies {
                Applies::Always => {}
                Applies::Attempt(n) => write!(f, "@{n}")?,
                Applies::Range(a, b) => write!(f, "@{a}-{b}")?,
            }
        }
        Ok(())
    }
}

/// What one connection is subjected to, decided when it connects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ConnFaults {
    pub status: Option<u16>,
    pub drop_every: Option<(u64, bool)>,
    pub stall_after: Option<u64>,
    pub forced_after: Option<u64>,
    pub malformed_every: Option<u64>,
    pub truncate_after: Option<u64>,
    pub split_chunks: bool,
    pub trickle: Option<(usize, Duration)>,
}

/// The live plan plus what unsuffixed `status=CODExK` faults have left.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    plan: FaultPlan,
    remaining: Vec<Option<u32>>,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        let remaining = plan
            .rules
            .iter()
            .map(|r| match (r.fault, r.applies) {
                (Fault::Status { count, .. }, Applies::Always) => count,
                _ => None,
            })
            .collect();
        FaultState { plan, remaining }
    }

    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Decides the faults of stream connection attempt `attempt` (1-based),
    /// consuming one use of each counted status fault that fires.
    pub(crate) fn on_connect(&mut self, attempt: u64) -> ConnFaults {
        let mut out = ConnFaults::default();
        for (rule, left) in self.plan.rules.iter().zip(self.remaining.iter_mut()) {
            if !rule.applies.covers(attempt) {
                continue;
            }
            match rule.fault {
                Fault::Status { code, .. } => {
                    if out.status.is_some() {
                        continue;
                    }
                    match left {
                        Some(0) => continue,
                        Some(k) => *k -= 1,
                        None => {}
                    }
                    out.status = Some(code);
                }
                Fault::DropEvery { records, rst } => out.drop_every = Some((records, rst)),
                Fault::StallAfter { records } => out.stall_after = Some(records),
                Fault::ForcedDisconnectAfter { records } => out.forced_after = Some(records),
                Fault::MalformedEvery { records } => out.malformed_every = Some(records),
                Fault::TruncateGzipAfter { records } => out.truncate_after = Some(records),
                Fault::SplitChunks => out.split_chunks = true,
                Fault::Trickle { bytes, every_ms } => {
                    out.trickle = Some((bytes, Duration::from_millis(every_ms)))
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form_and_prints_it_back() {
        let spec = "status=503x3,status=401@2,drop-every=1000,drop-every=10:rst@3-5,\
                    stall-after=500,forced-disconnect-after=7,malformed-every=4,\
                    truncate-gzip-after=9,split-chunks@1,trickle=64/10";
        let plan = FaultPlan::parse(spec).unwrap();
        assert_eq!(plan.rules.len(), 10);
        assert_eq!(
            plan.rules[3],
            FaultRule {
                fault: Fault::DropEvery {
                    records: 10,
                    rst: true
                },
                applies: Applies::Range(3, 5)
            }
        );
        assert_eq!(plan.to_string(), spec);
        assert_eq!(FaultPlan::parse(&plan.to_string()).unwrap(), plan);
        assert!(FaultPlan::parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_bad_items_with_a_reason() {
        for bad in [
            "status=200",
            "status=abc",
            "drop-every=0",
            "drop-every=5:maybe",
            "stall-after",
            "trickle=10",
            "split-chunks=3",
            "explode",
            "status=503@0",
            "status=503@5-2",
        ] {
            let err = FaultPlan::parse(bad).unwrap_err();
            assert_eq!(err.spec, bad);
            assert!(!err.reason.is_empty());
        }
    }

    #[test]
    fn counted_status_applies_to_the_next_connects_only() {
        let mut st = FaultState::new(FaultPlan::parse("status=503x2").unwrap());
        let got: Vec<_> = (1..=4).map(|a| st.on_connect(a).status).collect();
        assert_eq!(got, [Some(503), Some(503), None, None]);
    }

    #[test]
    fn suffixes_select_attempts_and_faults_combine() {
        let mut st = FaultState::new(
            FaultPlan::parse("status=429@2,drop-every=3:rst@3-4,split-chunks").unwrap(),
        );
        let a1 = st.on_connect(1);
        assert_eq!(
            (a1.status, a1.drop_every, a1.split_chunks),
            (None, None, true)
        );
        assert_eq!(st.on_connect(2).status, Some(429));
        assert_eq!(st.on_connect(3).drop_every, Some((3, true)));
        assert_eq!(st.on_connect(4).drop_every, Some((3, true)));
        assert_eq!(st.on_connect(5).drop_every, None);
        let mut always = FaultState::new(FaultPlan::parse("status=401").unwrap());
        assert!((1..10).all(|a| always.on_connect(a).status == Some(401)));
    }
}
