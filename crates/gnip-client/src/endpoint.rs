//! Endpoints: which stream to connect to, built from parts or parsed from
//! the URL the console shows. Pure; the connection asks it for the URL of
//! each attempt (with the partition and backfill of that attempt).
//!
//! URL layouts follow spec sections 2.1, 5.2, 5.3 and 8. Hosts are
//! configuration: the service has moved between several names, and tests
//! point at loopback.

use std::fmt;

use url::Url;

/// The stream product behind an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Product {
    /// PowerTrack 1.0 (`/accounts/{a}/publishers/twitter/streams/track/{l}.json`).
    PowerTrackV1,
    /// PowerTrack 2.0 (`/stream/powertrack/accounts/{a}/publishers/twitter/{l}.json`).
    PowerTrack,
    /// Decahose, the 10% sample (`sample10`), 2 partitions.
    Decahose,
    /// Firehose, 20 partitions.
    Firehose,
    /// Compliance Firehose, 8 partitions.
    Compliance,
    /// X API v2 filtered stream (`/2/tweets/search/stream`).
    V2Filtered,
    /// X API v2 1% sample (`/2/tweets/sample/stream`).
    V2Sample,
    /// X API v2 10% sample (`/2/tweets/sample10/stream`), 2 partitions.
    V2Sample10,
    /// X API v2 firehose (`/2/tweets/firehose/stream[/lang/xx]`), 20 partitions.
    V2Firehose,
    /// X API v2 post compliance (`/2/tweets/compliance/stream`), 4 partitions.
    V2TweetsCompliance,
    /// X API v2 user compliance (`/2/users/compliance/stream`), 4 partitions.
    V2UsersCompliance,
}

impl Product {
    /// True for the X API v2 products (bearer auth, `backfill_minutes`).
    pub fn is_v2(self) -> bool {
        matches!(
            self,
            Product::V2Filtered
                | Product::V2Sample
                | Product::V2Sample10
                | Product::V2Firehose
                | Product::V2TweetsCompliance
                | Product::V2UsersCompliance
        )
    }

    /// How many partitions the product has; `None` for unpartitioned streams.
    pub fn partitions(self) -> Option<u16> {
        match self {
            Product::Decahose | Product::V2Sample10 => Some(2),
            Product::Firehose | Product::V2Firehose => Some(20),
            Product::Compliance => Some(8),
            Product::V2TweetsCompliance | Product::V2UsersCompliance => Some(4),
            _ => None,
        }
    }

    /// The query parameter that asks for backfill, or `None` where the
    /// product has no backfill: PowerTrack 1.0 (it used `client=N`) and the
    /// enterprise Compliance Firehose, whose gaps are recovered by Replay
    /// (spec 2.3 and 5.2 list backfill for neither).
    pub fn backfill_param(self) -> Option<&'static str> {
        match self {
            Product::PowerTrackV1 | Product::Compliance => None,
            p if p.is_v2() => Some("backfill_minutes"),
            _ => Some("backfillMinutes"),
        }
    }

    /// The enterprise path segment (`powertrack`, `sample10`, ...).
    fn enterprise_segment(self) -> Option<&'static str> {
        match self {
            Product::PowerTrack => Some("powertrack"),
            Product::Decahose => Some("sample10"),
            Product::Firehose => Some("firehose"),
            Product::Compliance => Some("compliance"),
            _ => None,
        }
    }

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::PowerTrackV1 => "powertrack-1.0",
            Product::PowerTrack => "powertrack",
            Product::Decahose => "decahose",
            Product::Firehose => "firehose",
            Product::Compliance => "compliance",
            Product::V2Filtered => "v2-filtered",
            Product::V2Sample => "v2-sample",
            Product::V2Sample10 => "v2-sample10",
            Product::V2Firehose => "v2-firehose",
            Product::V2TweetsCompliance => "v2-tweets-compliance",
            Product::V2UsersCompliance => "v2-users-compliance",
        }
    }
}

/// Why an endpoint could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The text is not a URL.
    #[error("not a valid URL: {0}")]
    BadUrl(String),
    /// The URL's path matches none of the known stream layouts.
    #[error(
        "unrecognised stream path {0:?}: expected /stream/<product>/accounts/<account>/publishers/twitter/<label>.json, \
         /accounts/<account>/publishers/twitter/streams/track/<label>.json or a /2/... stream"
    )]
    UnknownPath(String),
    /// The URL carries a user name or password; credentials belong in the
    /// configuration, where they are kept secret.
    #[error("the stream URL carries credentials; remove them and set them in the configuration")]
    CredentialsInUrl,
    /// A partition outside the product's range.
    #[error("partition {partition} is out of range for {product} (1..={max})")]
    BadPartition {
        /// The product.
        product: &'static str,
        /// The partition asked for.
        partition: u16,
        /// The highest partition.
        max: u16,
    },
    /// The scheme is not http or https.
    #[error("unsupported URL scheme {0:?}: use https (or http for local testing)")]
    Scheme(String),
}

/// A stream endpoint: a base URL (without partition or backfill), its
/// product, and the partition named in the URL, if any.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: Url,
    product: Product,
    partition: Option<u16>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.base.as_str())
            .field("product", &self.product)
            .field("partition", &self.partition)
            .finish()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base.as_str())
    }
}

fn host_url(host: &str) -> Result<Url, EndpointError> {
    let text = if host.contains("://") {
        host.to_owned()
    } else {
        format!("https://{host}")
    };
    let url = Url::parse(&text).map_err(|e| EndpointError::BadUrl(e.to_string()))?;
    check_url(&url)?;
    Ok(url)
}

fn check_url(url: &Url) -> Result<(), EndpointError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::CredentialsInUrl);
    }
    match url.scheme() {
        "https" | "http" => Ok(()),
        other => Err(EndpointError::Scheme(other.to_owned())),
    }
}

impl Endpoint {
    /// PowerTrack 2.0 on `host` (e.g. `gnip-stream.x.com` or
    /// `http://127.0.0.1:8080`).
    ///
    /// # Errors
    ///
    /// [`EndpointError`] when the host does not form a valid URL.
    pub fn powertrack(host: &str, account: &str, label: &str) -> Result<Endpoint, EndpointError> {
        Endpoint::enterprise(host, Product::PowerTrack, account, label)
    }

    /// An enterprise 2.0 stream: PowerTrack, Decahose, Firehose or
    /// Compliance (use [`Endpoint::powertrack_v1`] for 1.0 and
    /// [`Endpoint::v2`] for X API v2 products).
    ///
    /// # Errors
    ///
    /// [`EndpointError`] for an invalid host, or a product that is not an
    /// enterprise 2.0 product.
    pub fn enterprise(
        host: &str,
        product: Product,
        account: &str,
        label: &str,
    ) -> Result<Endpoint, EndpointError> {
        let segment = product
            .enterprise_segment()
            .ok_or_else(|| EndpointError::UnknownPath(product.as_str().to_owned()))?;
        let mut base = host_url(host)?;
        base.set_path(&format!(
            "/stream/{segment}/accounts/{account}/publishers/twitter/{label}.json"
        ));
        Ok(Endpoint {
            base,
            product,
            partition: None,
        })
    }

    /// PowerTrack 1.0 (retired; kept for old configurations and replays of
    /// old data).
    ///
    /// # Errors
    ///
    /// [`EndpointError`] when the host does not form a valid URL.
    pub fn powertrack_v1(
        host: &str,
        account: &str,
        label: &str,
    ) -> Result<Endpoint, EndpointError> {
        let mut base = host_url(host)?;
        base.set_path(&format!(
            "/accounts/{account}/publishers/twitter/streams/track/{label}.json"
        ));
        Ok(Endpoint {
            base,
            product: Product::PowerTrackV1,
            partition: None,
        })
    }

    /// An X API v2 stream on `host` (e.g. `api.x.com`). For the firehose,
    /// `lang` selects a language variant (`en`, `ja`, `ko`, `pt`).
    ///
    /// # Errors
    ///
    /// [`EndpointError`] for an invalid host or a product that is not v2.
    pub fn v2(host: &str, product: Product, lang: Option<&str>) -> Result<Endpoint, EndpointError> {
        let path = match product {
            Product::V2Filtered => "/2/tweets/search/stream".to_owned(),
            Product::V2Sample => "/2/tweets/sample/stream".to_owned(),
            Product::V2Sample10 => "/2/tweets/sample10/stream".to_owned(),
            Product::V2Firehose => match lang {
                Some(l) => format!("/2/tweets/firehose/stream/lang/{l}"),
                None => "/2/tweets/firehose/stream".to_owned(),
            },
            Product::V2TweetsCompliance => "/2/tweets/compliance/stream".to_owned(),
            Product::V2UsersCompliance => "/2/users/compliance/stream".to_owned(),
            other => return Err(EndpointError::UnknownPath(other.as_str().to_owned())),
        };
        let mut base = host_url(host)?;
        base.set_path(&path);
        Ok(Endpoint {
            base,
            product,
            partition: None,
        })
    }

    /// Parses a full stream URL, detecting the product and any partition in
    /// the query. Backfill parameters in the URL are dropped (backfill is
    /// decided per connection attempt); other parameters (v2 `tweet.fields`,
    /// `expansions`, ...) are kept.
    ///
    /// # Errors
    ///
    /// [`EndpointError`] for text that is not a URL, a path of no known
    /// layout, credentials inside the URL or a partition out of range.
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let mut url = Url::parse(text.trim()).map_err(|e| EndpointError::BadUrl(e.to_string()))?;
        check_url(&url)?;
        let product = detect(url.path())?;

        let mut partition = None;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, v)| match k.as_ref() {
                "partition" => {
                    partition = v.parse::<u16>().ok();
                    false
                }
                "backfillMinutes" | "backfill_minutes" => false,
                _ => true,
            })
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let endpoint = Endpoint {
            base: url,
            product,
            partition,
        };
        if let Some(p) = partition {
            endpoint.check_partition(p)?;
        }
        Ok(endpoint)
    }

    /// The same endpoint with a fixed partition.
    ///
    /// # Errors
    ///
    /// [`EndpointError::BadPartition`] when out of the product's range.
    pub fn with_partition(mut self, partition: u16) -> Result<Endpoint, EndpointError> {
        self.check_partition(partition)?;
        self.partition = Some(partition);
        Ok(self)
    }

    /// Checks a 1-based partition number against the product.
    ///
    /// # Errors
    ///
    /// [`EndpointError::BadPartition`] when out of range or when the
    /// product has no partitions.
    pub fn check_partition(&self, partition: u16) -> Result<(), EndpointError> {
        let max = self.product.partitions().unwrap_or(0);
        if partition == 0 || partition > max {
            return Err(EndpointError::BadPartition {
                product: self.product.as_str(),
                partition,
                max,
            });
        }
        Ok(())
    }

    /// The product.
    pub fn product(&self) -> Product {
        self.product
    }

    /// True for X API v2 endpoints.
    pub fn is_v2(&self) -> bool {
        self.product.is_v2()
    }

    /// The partition named in the URL or set with
    /// [`Endpoint::with_partition`].
    pub fn partition(&self) -> Option<u16> {
        self.partition
    }

    /// The base URL (no partition, no backfill, never credentials).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of one connection attempt. `partition` 0 or `None` means the
    /// endpoint's own partition (if any); backfill is added only where the
    /// product supports it and the value is 1..=5.
    pub fn url_for(&self, partition: Option<u16>, backfill_minutes: Option<u8>) -> Url {
        let mut url = self.base.clone();
        let partition = partition.filter(|p| *p != 0).or(self.partition);
        let backfill = backfill_minutes
            .filter(|m| (1..=5).contains(m))
            .and_then(|m| self.product.backfill_param().map(|p| (p, m)));
        if partition.is_some() || backfill.is_some() {
            let mut q = url.query_pairs_mut();
            if let Some(p) = partition {
                q.append_pair("partition", &p.to_string());
            }
            if let Some((name, m)) = backfill {
                q.append_pair(name, &m.to_string());
            }
        }
        url
    }
}

/// The product for a URL path.
fn detect(path: &str) -> Result<Product, EndpointError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let unknown = || EndpointError::UnknownPath(path.to_owned());
    match segs.as_slice() {
        [
            "stream",
            product,
            "accounts",
            _,
            "publishers",
            "twitter",
            label,
        ] if label.ends_with(".json") => match *product {
            "powertrack" => Ok(Product::PowerTrack),
            "sample10" => Ok(Product::Decahose),
            "firehose" => Ok(Product::Firehose),
            "compliance" => Ok(Product::Compliance),
            _ => Err(unknown()),
        },
        [
            "accounts",
            _,
            "publishers",
            "twitter",
            "streams",
            "track",
            label,
        ] if label.ends_with(".json") => Ok(Product::PowerTrackV1),
        ["2", "tweets", "search", "stream"] => Ok(Product::V2Filtered),
        ["2", "tweets", "sample", "stream"] => Ok(Product::V2Sample),
        ["2", "tweets", "sample10", "stream"] => Ok(Product::V2Sample10),
        ["2", "tweets", "firehose", "stream"]
        | ["2", "tweets", "firehose", "stream", "lang", _] => Ok(Product::V2Firehose),
        ["2", "tweets", "compliance", "stream"] => Ok(Product::V2TweetsCompliance),
        ["2", "users", "compliance", "stream"] => Ok(Product::V2UsersCompliance),
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_enterprise_urls() {
        let e = Endpoint::powertrack("gnip-stream.twitter.com", "acme", "prod").expect("valid");
        assert_eq!(
            e.url_for(None, Some(2)).as_str(),
            "https://gnip-stream.twitter.com/stream/powertrack/accounts/acme/publishers/twitter/prod.json?backfillMinutes=2"
        );
        let d = Endpoint::enterprise("http://127.0.0.1:8080", Product::Decahose, "acme", "prod")
            .expect("valid");
        assert_eq!(
            d.url_for(Some(2), None).as_str(),
            "http://127.0.0.1:8080/stream/sample10/accounts/acme/publishers/twitter/prod.json?partition=2"
        );
        let c = Endpoint::enterprise("gnip-stream.x.com", Product::Compliance, "acme", "prod")
            .expect("valid");
        assert_eq!(
            c.url_for(Some(8), Some(2)).as_str(),
            "https://gnip-stream.x.com/stream/compliance/accounts/acme/publishers/twitter/prod.json?partition=8"
        );
        let v1 = Endpoint::powertrack_v1("stream.gnip.com:443", "acme", "prod").expect("valid");
        assert_eq!(
            v1.url_for(None, Some(3)).as_str(),
            "https://stream.gnip.com/accounts/acme/publishers/twitter/streams/track/prod.json"
        );
    }

    #[test]
    fn builds_v2_urls() {
        let e = Endpoint::v2("api.x.com", Product::V2Filtered, None).expect("valid");
        assert_eq!(
            e.url_for(None, Some(4)).as_str(),
            "https://api.x.com/2/tweets/search/stream?backfill_minutes=4"
        );
        let f = Endpoint::v2("api.x.com", Product::V2Firehose, Some("ja")).expect("valid");
        assert_eq!(
            f.url_for(Some(20), Some(1)).as_str(),
            "https://api.x.com/2/tweets/firehose/stream/lang/ja?partition=20&backfill_minutes=1"
        );
    }

    #[test]
    fn parses_every_layout() {
        let cases = [
            (
                "https://gnip-stream.twitter.com/stream/powertrack/accounts/a/publishers/twitter/prod.json",
                Product::PowerTrack,
            ),
            (
                "https://gnip-stream.x.com/stream/sample10/accounts/a/publishers/twitter/prod.json?partition=1",
                Product::Decahose,
            ),
            (
                "https://gnip-stream.x.com/stream/firehose/accounts/a/publishers/twitter/prod.json?partition=20",
                Product::Firehose,
            ),
            (
                "https://gnip-stream.x.com/stream/compliance/accounts/a/publishers/twitter/prod.json?partition=8",
                Product::Compliance,
            ),
            (
                "https://stream.gnip.com:443/accounts/a/publishers/twitter/streams/track/prod.json",
                Product::PowerTrackV1,
            ),
            (
                "https://api.x.com/2/tweets/search/stream?tweet.fields=created_at",
                Product::V2Filtered,
            ),
            (
                "https://api.x.com/2/tweets/sample/stream",
                Product::V2Sample,
            ),
            (
                "https://api.x.com/2/tweets/sample10/stream?partition=2",
                Product::V2Sample10,
            ),
            (
                "https://api.x.com/2/tweets/firehose/stream/lang/en?partition=3",
                Product::V2Firehose,
            ),
            (
                "https://api.x.com/2/tweets/compliance/stream?partition=4",
                Product::V2TweetsCompliance,
            ),
            (
                "https://api.x.com/2/users/compliance/stream?partition=1",
                Product::V2UsersCompliance,
            ),
        ];
        for (url, product) in cases {
            let e = Endpoint::parse(url).unwrap_or_else(|err| panic!("{url}: {err}"));
            assert_eq!(e.product(), product, "{url}");
            assert_eq!(e.is_v2(), url.contains("/2/"));
        }
    }

    #[test]
    fn parse_takes_partition_drops_backfill_keeps_other_params() {
        let e = Endpoint::parse(
            "http://127.0.0.1:9/2/tweets/sample10/stream?backfill_minutes=5&partition=2&tweet.fields=lang",
        )
        .expect("valid");
        assert_eq!(e.partition(), Some(2));
        assert_eq!(
            e.url_for(None, None).as_str(),
            "http://127.0.0.1:9/2/tweets/sample10/stream?tweet.fields=lang&partition=2"
        );
        assert_eq!(
            e.url_for(Some(1), Some(2)).as_str(),
            "http://127.0.0.1:9/2/tweets/sample10/stream?tweet.fields=lang&partition=1&backfill_minutes=2"
        );
    }

    #[test]
    fn parse_rejects_bad_input() {
        assert!(matches!(
            Endpoint::parse("not a url"),
            Err(EndpointError::BadUrl(_))
        ));
        assert!(matches!(
            Endpoint::parse("https://example.com/foo"),
            Err(EndpointError::UnknownPath(_))
        ));
        let err = Endpoint::parse(
            "https://me:hunter2@gnip-stream.x.com/stream/powertrack/accounts/a/publishers/twitter/p.json",
        )
        .expect_err("credentials refused");
        assert_eq!(err, EndpointError::CredentialsInUrl);
        assert!(!err.to_string().contains("hunter2"));
        assert!(matches!(
            Endpoint::parse(
                "https://gnip-stream.x.com/stream/sample10/accounts/a/publishers/twitter/p.json?partition=3"
            ),
            Err(EndpointError::BadPartition {
                partition: 3,
                max: 2,
                ..
            })
        ));
        assert!(matches!(
            Endpoint::parse("ftp://api.x.com/2/tweets/sample/stream"),
            Err(EndpointError::Scheme(_))
        ));
    }
}
