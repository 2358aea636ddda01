//! The generator of realistic posts: a pool of distinct record templates per
//! format (Activity Streams, original, v2), built once from the seed, with
//! plausible authors, several languages, hashtags, mentions, unwound links,
//! places, replies, retweets and quotes. Enriched payloads are large (a few
//! kilobytes, most of it the user object and nested originals) and so are
//! these: the pool averages about 3.4 KB per record, like real traffic.

use std::sync::Arc;

use fastrand::Rng;

use crate::config::Format;
use crate::template::{Hole, Template, TemplateBuilder, TimeFormat};
use crate::wire::segment_compressor;

const FIRST: [&str; 24] = [
    "ana", "ben", "chloe", "dmitri", "emma", "farid", "grace", "hiro", "ines", "jamal", "kate",
    "liam", "maria", "noah", "olga", "pedro", "quinn", "rosa", "sven", "tariq", "uma", "victor",
    "wen", "yuki",
];
const LAST: [&str; 16] = [
    "smith", "garcia", "tanaka", "silva", "muller", "kim", "nguyen", "rossi", "dubois", "kowalski",
    "haddad", "olsen", "santos", "ivanov", "cohen", "patel",
];
const PLACES: [(&str, &str, &str, f64, f64); 8] = [
    ("Boulder, CO", "United States", "US", -105.27, 40.01),
    ("London, England", "United Kingdom", "GB", -0.12, 51.5),
    ("Tokyo-to, Japan", "Japan", "JP", 139.69, 35.68),
    ("Sao Paulo, Brazil", "Brazil", "BR", -46.63, -23.55),
    ("Madrid, Spain", "Spain", "ES", -3.7, 40.41),
    ("Paris, France", "France", "FR", 2.35, 48.85),
    ("Berlin, Germany", "Germany", "DE", 13.4, 52.52),
    ("Cairo, Egypt", "Egypt", "EG", 31.23, 30.04),
];
const SOURCES: [(&str, &str); 4] = [
    ("Twitter for iPhone", "http://twitter.com/download/iphone"),
    ("Twitter for Android", "http://twitter.com/download/android"),
    ("Twitter Web App", "https://mobile.twitter.com"),
    ("TweetDeck", "https://about.twitter.com/products/tweetdeck"),
];
const TAGS: [&str; 10] = [
    "rustlang",
    "coffee",
    "weather",
    "music",
    "news",
    "football",
    "travel",
    "data",
    "tea",
    "photography",
];
const DOMAINS: [&str; 5] = [
    "example.com",
    "news.example.org",
    "blog.example.net",
    "shop.example.io",
    "photos.example.co",
];

struct Lang {
    code: &'static str,
    words: &'static [&'static str],
}

const LANGS: [(Lang, u32); 7] = [
    (
        Lang {
            code: "en",
            words: &[
                "coffee", "tea", "rain", "snow", "morning", "great", "new", "release", "today",
                "city", "game", "love", "weekend", "train", "late", "again", "finally", "best",
                "team", "music", "the", "and", "is", "a", "this", "my", "with", "for",
            ],
        },
        55,
    ),
    (
        Lang {
            code: "es",
            words: &[
                "cafe", "lluvia", "hoy", "manana", "partido", "gracias", "nuevo", "ciudad",
                "musica", "amigos", "el", "la", "y", "en", "muy", "bien",
            ],
        },
        12,
    ),
    (
        Lang {
            code: "ja",
            words: &[
                "\u{30b3}\u{30fc}\u{30d2}\u{30fc}",
                "\u{96e8}",
                "\u{4eca}\u{65e5}",
                "\u{6771}\u{4eac}",
                "\u{97f3}\u{697d}",
                "\u{96fb}\u{8eca}",
                "\u{3042}\u{308a}\u{304c}\u{3068}\u{3046}",
                "\u{6700}\u{9ad8}",
            ],
        },
        10,
    ),
    (
        Lang {
            code: "pt",
            words: &[
                "cafe", "chuva", "hoje", "jogo", "cidade", "obrigado", "novo", "musica", "amigos",
                "o", "a", "e", "muito", "bom",
            ],
        },
        8,
    ),
    (
        Lang {
            code: "ar",
            words: &[
                "\u{0642}\u{0647}\u{0648}\u{0629}",
                "\u{0645}\u{0637}\u{0631}",
                "\u{0627}\u{0644}\u{064a}\u{0648}\u{0645}",
                "\u{0645}\u{062f}\u{064a}\u{0646}\u{0629}",
                "\u{0634}\u{0643}\u{0631}\u{0627}",
            ],
        },
        5,
    ),
    (
        Lang {
            code: "fr",
            words: &[
                "cafe",
                "pluie",
                "neige",
                "aujourd'hui",
                "ville",
                "merci",
                "nouveau",
                "musique",
                "le",
                "la",
                "et",
                "tres",
                "bien",
            ],
        },
        5,
    ),
    (
        Lang {
            code: "de",
            words: &[
                "kaffee", "regen", "schnee", "heute", "stadt", "danke", "neu", "musik", "der",
                "die", "und", "sehr", "gut",
            ],
        },
        5,
    ),
];

#[derive(Clone)]
struct User {
    id: u64,
    screen_name: String,
    name: String,
    description: String,
    location: Option<usize>,
    followers: u64,
    friends: u64,
    statuses: u64,
    created_ms: u64,
    verified: bool,
    lang: &'static str,
}

#[derive(Clone)]
struct Post {
    id: u64,
    time_ms: u64,
    text: String,
    lang: &'static str,
    hashtags: Vec<String>,
    mentions: Vec<User>,
    urls: Vec<(String, String, String)>,
    source: usize,
    place: Option<usize>,
    reply_to: Option<(u64, User)>,
    counts: (u64, u64, u64, u64),
}

enum Kind {
    Post,
    Retweet(Post, User),
    Quote(Post, User),
}

struct Gen {
    rng: Rng,
    users: Vec<User>,
}

impl Gen {
    fn user(rng: &mut Rng) -> User {
        let first = FIRST[rng.usize(..FIRST.len())];
        let last = LAST[rng.usize(..LAST.len())];
        let lang = pick_lang(rng).code;
        let topics: Vec<&str> = (0..3).map(|_| TAGS[rng.usize(..TAGS.len())]).collect();
        User {
            id: rng.u64(10_000_000..1_600_000_000_000_000_000),
            screen_name: format!("{first}_{last}{}", rng.u32(1..9999)),
            name: format!("{} {}", capitalise(first), capitalise(last)),
            description: format!(
                "Writing about {}, {} and {}. Previously at {}. {} lover.",
                topics[0],
                topics[1],
                topics[2],
                DOMAINS[rng.usize(..DOMAINS.len())],
                capitalise(topics[0])
            ),
            location: if rng.bool() {
                Some(rng.usize(..PLACES.len()))
            } else {
                None
            },
            followers: rng.u64(0..250_000),
            friends: rng.u64(0..5_000),
            statuses: rng.u64(10..90_000),
            created_ms: rng.u64(1_200_000_000_000..1_650_000_000_000),
            verified: rng.u8(..50) == 0,
            lang,
        }
    }

    fn post(&mut self, author: &User) -> Post {
        let lang = if self.rng.u8(..4) == 0 {
            pick_lang(&mut self.rng)
        } else {
            lang_of(author.lang)
        };
        let n = self.rng.usize(4..20);
        let mut words: Vec<String> = (0..n)
            .map(|_| lang.words[self.rng.usize(..lang.words.len())].to_string())
            .collect();
        let hashtags: Vec<String> = (0..self.rng.usize(0..3))
            .map(|_| TAGS[self.rng.usize(..TAGS.len())].to_string())
            .collect();
        let mentions: Vec<User> = (0..self.rng.usize(0..3))
            .map(|_| self.users[self.rng.usize(..self.users.len())].clone())
            .collect();
        for m in &mentions {
            words.insert(0, format!("@{}", m.screen_name));
        }
        for h in &hashtags {
            words.push(format!("#{h}"));
        }
        let urls: Vec<(String, String, String)> = (0..self.rng.usize(0..3))
            .map(|_| {
                let d = DOMAINS[self.rng.usize(..DOMAINS.len())];
                let slug: String = (0..4)
                    .map(|_| lang.words[self.rng.usize(..lang.words.len())])
                    .collect::<Vec<_>>()
                    .join("-");
                let tco = format!("https://t.co/{}", alnum(&mut self.rng, 10));
                words.push(tco.clone());
                (
                    tco,
                    format!("https://{d}/{}/{slug}", self.rng.u32(1000..99999)),
                    capitalise(&slug.replace('-', " ")),
                )
            })
            .collect();
        let reply_to = if self.rng.u8(..8) == 0 {
            let u = self.users[self.rng.usize(..self.users.len())].clone();
            Some((
                self.rng
                    .u64(1_500_000_000_000_000_000..1_700_000_000_000_000_000),
                u,
            ))
        } else {
            None
        };
        Post {
            id: self
                .rng
                .u64(1_500_000_000_000_000_000..1_700_000_000_000_000_000),
            time_ms: self.rng.u64(1_650_000_000_000..1_700_000_000_000),
            text: words.join(" "),
            lang: lang.code,
            hashtags,
            mentions,
            urls,
            source: self.rng.usize(..SOURCES.len()),
            place: if self.rng.u8(..6) == 0 {
                Some(self.rng.usize(..PLACES.len()))
            } else {
                None
            },
            reply_to,
            counts: (
                self.rng.u64(0..500),
                self.rng.u64(0..80),
                self.rng.u64(0..3000),
                self.rng.u64(0..40),
            ),
        }
    }
}

fn pick_lang(rng: &mut Rng) -> &'static Lang {
    let total: u32 = LANGS.iter().map(|(_, w)| w).sum();
    let mut x = rng.u32(..total);
    for (l, w) in &LANGS {
        if x < *w {
            return l;
        }
        x -= w;
    }
    &LANGS[0].0
}

fn lang_of(code: &str) -> &'static Lang {
    LANGS
        .iter()
        .map(|(l, _)| l)
        .find(|l| l.code == code)
        .unwrap_or(&LANGS[0].0)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn alnum(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| rng.alphanumeric()).collect()
}

/// Builds `n` distinct templates of `format` from `seed`.
pub(crate) fn pool(format: Format, seed: u64, n: usize) -> Vec<Arc<Template>> {
    let mut rng = Rng::with_seed(seed ^ 0x9e37_79b9_7f4a_7c15);
    let users: Vec<User> = (0..(n / 4).max(16)).map(|_| Gen::user(&mut rng)).collect();
    let mut g = Gen { rng, users };
    let mut c = segment_compressor();
    (0..n)
        .map(|index| {
            let author = g.users[g.rng.usize(..g.users.len())].clone();
            let post = g.post(&author);
            let kind = match g.rng.u8(..100) {
                0..=67 => Kind::Post,
                68..=87 => {
                    let u = g.users[g.rng.usize(..g.users.len())].clone();
                    Kind::Retweet(g.post(&u), u)
                }
                _ => {
                    let u = g.users[g.rng.usize(..g.users.len())].clone();
                    Kind::Quote(g.post(&u), u)
                }
            };
            let mut match_text = post.text.clone();
            if let Kind::Retweet(p, _) | Kind::Quote(p, _) = &kind {
                match_text.push(' ');
                match_text.push_str(&p.text);
            }
            let mut b = TemplateBuilder::default();
            match format {
                Format::Original => original(&mut b, &post, &author, &kind),
                Format::ActivityStreams => activity(&mut b, &post, &author, &kind),
                Format::V2 => v2(&mut b, &post, &author, &kind),
            }
            Arc::new(b.build(index, author.id, match_text, &mut c))
        })
        .collect()
}

// Writes either a hole (the top-level record) or a fixed value (a nested one).
fn id(b: &mut TemplateBuilder, top: bool, v: u64) {
    if top {
        b.hole(Hole::PostId);
    } else {
        b.text(&v.to_string());
    }
}

fn time(b: &mut TemplateBuilder, top: bool, f: TimeFormat, ms: u64) {
    if top {
        b.hole(Hole::Time(f));
        return;
    }
    let mut out = Vec::new();
    match f {
        TimeFormat::Twitter => crate::time::write_twitter(&mut out, ms),
        TimeFormat::IsoMillis => crate::time::write_iso_millis(&mut out, ms),
        TimeFormat::EpochMillis => out.extend_from_slice(ms.to_string().as_bytes()),
    }
    b.text(std::str::from_utf8(&out).expect("time formatters write ASCII"));
}

fn truncate(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

// ---- original / native enriched ----

fn original_user(b: &mut TemplateBuilder, u: &User) {
    b.text(&format!(
        "{{\"id\":{},\"id_str\":\"{}\",\"name\":",
        u.id, u.id
    ));
    b.string(&u.name)
        .text(",\"screen_name\":")
        .string(&u.screen_name)
        .text(",\"location\":");
    match u.location {
        Some(p) => b.string(PLACES[p].0),
        None => b.text("null"),
    };
    b.text(",\"url\":null,\"description\":")
        .string(&u.description);
    b.text(&format!(
        ",\"translator_type\":\"none\",\"protected\":false,\"verified\":{},\"followers_count\":{},\"friends_count\":{},\"listed_count\":{},\"favourites_count\":{},\"statuses_count\":{},\"created_at\":\"",
        u.verified, u.followers, u.friends, u.followers / 100, u.statuses / 3, u.statuses
    ));
    time(b, false, TimeFormat::Twitter, u.created_ms);
    b.text(&format!(
        "\",\"utc_offset\":null,\"time_zone\":null,\"geo_enabled\":{geo},\"lang\":null,\"contributors_enabled\":false,\"is_translator\":false,\"profile_link_color\":\"1DA1F2\",\"profile_image_url\":\"http://pbs.twimg.com/profile_images/{img}/avatar_normal.jpg\",\"profile_image_url_https\":\"https://pbs.twimg.com/profile_images/{img}/avatar_normal.jpg\",\"profile_banner_url\":\"https://pbs.twimg.com/profile_banners/{uid}/1600000000\",\"default_profile\":true,\"default_profile_image\":false,\"following\":null,\"follow_request_sent\":null,\"notifications\":null",
        geo = u.location.is_some(),
        img = u.id.wrapping_mul(31) % 1_000_000_000_000_000_000,
        uid = u.id
    ));
    if let Some(p) = u.location {
        let (full, country, cc, lon, lat) = PLACES[p];
        b.text(",\"derived\":{\"locations\":[{\"country\":")
            .string(country);
        b.text(&format!(",\"country_code\":\"{cc}\",\"locality\":"))
            .string(full.split(',').next().unwrap_or(full));
        b.text(",\"full_name\":").string(full);
        b.text(&format!(
            ",\"geo\":{{\"coordinates\":[{lon},{lat}],\"type\":\"point\"}}}}]}}"
        ));
    }
    b.text("}");
}

fn original_entities(b: &mut TemplateBuilder, p: &Post) {
    b.text("{\"hashtags\":[");
    let mut pos = 0;
    for (i, h) in p.hashtags.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        b.text("{\"text\":").string(h).text(&format!(
            ",\"indices\":[{},{}]}}",
            pos,
            pos + h.len() + 1
        ));
        pos += h.len() + 2;
    }
    b.text("],\"urls\":[");
    for (i, (tco, full, title)) in p.urls.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        b.text("{\"url\":")
            .string(tco)
            .text(",\"expanded_url\":")
            .string(full);
        b.text(",\"display_url\":")
            .string(&truncate(full.trim_start_matches("https://"), 26));
        b.text(&format!(
            ",\"indices\":[{},{}],\"unwound\":{{\"url\":",
            pos,
            pos + 23
        ))
        .string(full);
        b.text(",\"status\":200,\"title\":")
            .string(title)
            .text(",\"description\":");
        b.string(&format!("{title}: the full story."));
        b.text("}}");
        pos += 24;
    }
    b.text("],\"user_mentions\":[");
    for (i, m) in p.mentions.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        b.text("{\"screen_name\":")
            .string(&m.screen_name)
            .text(",\"name\":")
            .string(&m.name);
        b.text(&format!(
            ",\"id\":{0},\"id_str\":\"{0}\",\"indices\":[0,{1}]}}",
            m.id,
            m.screen_name.len() + 1
        ));
    }
    b.text("],\"symbols\":[]}");
}

fn original_tweet(b: &mut TemplateBuilder, p: &Post, u: &User, kind: &Kind, top: bool) {
    b.text("{\"created_at\":\"");
    time(b, top, TimeFormat::Twitter, p.time_ms);
    b.text("\",\"id\":");
    id(b, top, p.id);
    b.text(",\"id_str\":\"");
    id(b, top, p.id);
    let text = match kind {
        Kind::Retweet(op, ou) => format!("RT @{}: {}", ou.screen_name, op.text),
        _ => p.text.clone(),
    };
    let long = text.chars().count() > 140;
    b.text("\",\"text\":").string(&if long {
        format!("{}\u{2026}", truncate(&text, 139))
    } else {
        text.clone()
    });
    let (name, url) = SOURCES[p.source];
    b.text(",\"source\":")
        .string(&format!("<a href=\"{url}\" rel=\"nofollow\">{name}</a>"));
    b.text(&format!(",\"truncated\":{long}"));
    match &p.reply_to {
        Some((rid, ru)) if !matches!(kind, Kind::Retweet(..)) => {
            b.text(&format!(
                ",\"in_reply_to_status_id\":{rid},\"in_reply_to_status_id_str\":\"{rid}\",\"in_reply_to_user_id\":{0},\"in_reply_to_user_id_str\":\"{0}\",\"in_reply_to_screen_name\":",
                ru.id
            ));
            b.string(&ru.screen_name);
        }
        _ => {
            b.text(",\"in_reply_to_status_id\":null,\"in_reply_to_status_id_str\":null,\"in_reply_to_user_id\":null,\"in_reply_to_user_id_str\":null,\"in_reply_to_screen_name\":null");
        }
    }
    b.text(",\"user\":");
    original_user(b, u);
    b.text(",\"geo\":null,\"coordinates\":null,\"place\":");
    match p.place {
        Some(i) => {
            let (full, country, cc, lon, lat) = PLACES[i];
            b.text(&format!("{{\"id\":\"{:016x}\",\"url\":\"https://api.twitter.com/1.1/geo/id/{:016x}.json\",\"place_type\":\"city\",\"name\":", i * 7919 + 11, i * 7919 + 11));
            b.string(full.split(',').next().unwrap_or(full))
                .text(",\"full_name\":")
                .string(full);
            b.text(&format!(",\"country_code\":\"{cc}\",\"country\":"))
                .string(country);
            b.text(&format!(
                ",\"bounding_box\":{{\"type\":\"Polygon\",\"coordinates\":[[[{0:.4},{1:.4}],[{0:.4},{3:.4}],[{2:.4},{3:.4}],[{2:.4},{1:.4}]]]}},\"attributes\":{{}}}}",
                lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1
            ));
        }
        None => {
            b.text("null");
        }
    }
    b.text(",\"contributors\":null");
    match kind {
        Kind::Retweet(op, ou) => {
            b.text(",\"retweeted_status\":");
            original_tweet(b, op, ou, &Kind::Post, false);
            b.text(",\"is_quote_status\":false");
        }
        Kind::Quote(op, ou) => {
            b.text(&format!(
                ",\"quoted_status_id\":{0},\"quoted_status_id_str\":\"{0}\",\"quoted_status\":",
                op.id
            ));
            original_tweet(b, op, ou, &Kind::Post, false);
            b.text(",\"quoted_status_permalink\":{\"url\":\"https://t.co/q\",\"expanded\":");
            b.string(&format!(
                "https://twitter.com/{}/status/{}",
                ou.screen_name, op.id
            ))
            .text(",\"display\":\"twitter.com/...\"}");
            b.text(",\"is_quote_status\":true");
        }
        Kind::Post => {
            b.text(",\"is_quote_status\":false");
        }
    }
    // A retweet's entities are those of the original it repeats.
    let ents = match kind {
        Kind::Retweet(op, _) => op,
        _ => p,
    };
    if long {
        b.text(",\"extended_tweet\":{\"full_text\":").string(&text);
        b.text(&format!(
            ",\"display_text_range\":[0,{}]",
            text.chars().count()
        ));
        if top {
            b.text(",\"entities\":");
            original_entities(b, ents);
        }
        b.text("}");
    }
    let (rt, rep, fav, quo) = p.counts;
    if top {
        b.text(",\"quote_count\":0,\"reply_count\":0,\"retweet_count\":0,\"favorite_count\":0,\"entities\":");
    } else {
        b.text(&format!(",\"quote_count\":{quo},\"reply_count\":{rep},\"retweet_count\":{rt},\"favorite_count\":{fav},\"entities\":"));
    }
    original_entities(b, ents);
    b.text(",\"favorited\":false,\"retweeted\":false");
    if !p.urls.is_empty() {
        b.text(",\"possibly_sensitive\":false");
    }
    b.text(",\"filter_level\":\"low\",\"lang\":").string(p.lang);
    if top {
        b.text(",\"timestamp_ms\":\"");
        b.hole(Hole::Time(TimeFormat::EpochMillis));
        b.text("\"");
        b.hole(Hole::Rules { comma: true });
    } else {
        b.text(&format!(",\"timestamp_ms\":\"{}\"", p.time_ms));
    }
    b.text("}");
}

fn original(b: &mut TemplateBuilder, p: &Post, u: &User, kind: &Kind) {
    original_tweet(b, p, u, kind, true);
}

// ---- Activity Streams ----

fn as_actor(b: &mut TemplateBuilder, u: &User) {
    b.text(&format!("{{\"objectType\":\"person\",\"id\":\"id:twitter.com:{}\",\"link\":\"http://www.twitter.com/", u.id));
    b.text(&u.screen_name)
        .text("\",\"displayName\":")
        .string(&u.name);
    b.text(",\"postedTime\":\"");
    time(b, false, TimeFormat::IsoMillis, u.created_ms);
    b.text("\",\"image\":\"https://pbs.twimg.com/profile_images/");
    b.text(&format!(
        "{}/avatar_normal.jpg\",\"summary\":",
        u.id % 1_000_000_007
    ))
    .string(&u.description);
    b.text(&format!(
        ",\"links\":[{{\"href\":null,\"rel\":\"me\"}}],\"friendsCount\":{},\"followersCount\":{},\"listedCount\":{},\"statusesCount\":{},\"twitterTimeZone\":null,\"verified\":{},\"utcOffset\":null,\"preferredUsername\":",
        u.friends, u.followers, u.followers / 100, u.statuses, u.verified
    ));
    b.string(&u.screen_name).text(&format!(
        ",\"languages\":[\"{}\"],\"favoritesCount\":{}",
        u.lang,
        u.statuses / 3
    ));
    if let Some(p) = u.location {
        b.text(",\"location\":{\"objectType\":\"place\",\"displayName\":")
            .string(PLACES[p].0)
            .text("}");
    }
    b.text("}");
}

fn as_entities(b: &mut TemplateBuilder, p: &Post) {
    // Activity Streams carries the same entity objects as the original format.
    original_entities(b, p);
}

fn as_activity(b: &mut TemplateBuilder, p: &Post, u: &User, kind: &Kind, top: bool) {
    b.text("{\"id\":\"tag:search.twitter.com,2005:");
    id(b, top, p.id);
    b.text("\",\"objectType\":\"activity\",\"verb\":");
    b.text(if matches!(kind, Kind::Retweet(..)) {
        "\"share\""
    } else {
        "\"post\""
    });
    b.text(",\"postedTime\":\"");
    time(b, top, TimeFormat::IsoMillis, p.time_ms);
    let (name, url) = SOURCES[p.source];
    b.text("\",\"generator\":{\"displayName\":")
        .string(name)
        .text(",\"link\":")
        .string(url);
    b.text("},\"provider\":{\"objectType\":\"service\",\"displayName\":\"Twitter\",\"link\":\"http://www.twitter.com\"},\"link\":\"http://twitter.com/");
    b.text(&u.screen_name).text("/statuses/");
    id(b, top, p.id);
    let body = match kind {
        Kind::Retweet(op, ou) => format!("RT @{}: {}", ou.screen_name, op.text),
        _ => p.text.clone(),
    };
    b.text("\",\"body\":").string(&body);
    b.text(",\"actor\":");
    as_actor(b, u);
    b.text(",\"object\":");
    match kind {
        Kind::Retweet(op, ou) => as_activity(b, op, ou, &Kind::Post, false),
        _ => {
            b.text("{\"objectType\":\"note\",\"id\":\"object:search.twitter.com,2005:");
            id(b, top, p.id);
            b.text("\",\"summary\":")
                .string(&p.text)
                .text(",\"link\":\"http://twitter.com/");
            b.text(&u.screen_name).text("/statuses/");
            id(b, top, p.id);
            b.text("\",\"postedTime\":\"");
            time(b, top, TimeFormat::IsoMillis, p.time_ms);
            b.text("\"}");
        }
    }
    if let Some((rid, ru)) = &p.reply_to {
        b.text(&format!(
            ",\"inReplyTo\":{{\"link\":\"http://twitter.com/{}/statuses/{rid}\"}}",
            ru.screen_name
        ));
    }
    if let Some(i) = p.place {
        let (full, country, cc, lon, lat) = PLACES[i];
        b.text(",\"location\":{\"objectType\":\"place\",\"displayName\":")
            .string(full);
        b.text(",\"name\":")
            .string(full.split(',').next().unwrap_or(full))
            .text(",\"country_code\":")
            .string(country);
        b.text(&format!(
            ",\"twitter_country_code\":\"{cc}\",\"twitter_place_type\":\"city\",\"geo\":{{\"type\":\"Polygon\",\"coordinates\":[[[{0:.4},{1:.4}],[{0:.4},{3:.4}],[{2:.4},{3:.4}],[{2:.4},{1:.4}]]]}}}}",
            lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1
        ));
    }
    let (rt, _, fav, _) = p.counts;
    b.text(&format!(
        ",\"favoritesCount\":{},\"twitter_entities\":",
        if top { 0 } else { fav }
    ));
    as_entities(b, p);
    b.text(",\"twitter_filter_level\":\"low\",\"twitter_lang\":")
        .string(p.lang);
    b.text(&format!(",\"retweetCount\":{}", if top { 0 } else { rt }));
    if let Kind::Quote(op, ou) = kind {
        b.text(",\"twitter_quoted_status\":");
        as_activity(b, op, ou, &Kind::Post, false);
    }
    if body.chars().count() > 140 {
        b.text(",\"long_object\":{\"body\":")
            .string(&body)
            .text(",\"display_text_range\":[0,");
        b.text(&format!("{}]}}", body.chars().count()));
    }
    if top {
        b.text(",\"gnip\":{\"urls\":[");
        for (i, (tco, full, _)) in p.urls.iter().enumerate() {
            if i > 0 {
                b.text(",");
            }
            b.text("{\"url\":")
                .string(tco)
                .text(",\"expanded_url\":")
                .string(full);
            b.text(",\"expanded_status\":200,\"expanded_url_title\":")
                .string(&p.urls[i].2)
                .text("}");
        }
        b.text("]");
        if let Some(loc) = u.location {
            let (full, country, cc, _, _) = PLACES[loc];
            b.text(",\"profileLocations\":[{\"objectType\":\"place\",\"displayName\":")
                .string(full);
            b.text(&format!(
                ",\"address\":{{\"country\":\"{country}\",\"countryCode\":\"{cc}\"}}}}]"
            ));
        }
        b.hole(Hole::Rules { comma: true });
        b.text("}");
    }
    b.text("}");
}

fn activity(b: &mut TemplateBuilder, p: &Post, u: &User, kind: &Kind) {
    as_activity(b, p, u, kind, true);
}

// ---- X API v2 ----

fn v2_tweet(b: &mut TemplateBuilder, p: &Post, u: &User, kind: &Kind, top: bool) {
    b.text("{\"id\":\"");
    id(b, top, p.id);
    let text = match kind {
        Kind::Retweet(op, ou) => format!("RT @{}: {}", ou.screen_name, op.text),
        _ => p.text.clone(),
    };
    b.text("\",\"text\":").string(&text);
    b.text(&format!(",\"author_id\":\"{}\",\"created_at\":\"", u.id));
    time(b, top, TimeFormat::IsoMillis, p.time_ms);
    b.text("\",\"conversation_id\":\"");
    match &p.reply_to {
        Some((rid, _)) => {
            b.text(&rid.to_string());
        }
        None => id(b, top, p.id),
    }
    b.text("\",\"edit_history_tweet_ids\":[\"");
    id(b, top, p.id);
    b.text("\"],\"lang\":").string(p.lang);
    b.text(&format!(
        ",\"source\":\"{}\",\"reply_settings\":\"everyone\",\"possibly_sensitive\":false",
        SOURCES[p.source].0
    ));
    let (rt, rep, fav, quo) = if top { (0, 0, 0, 0) } else { p.counts };
    b.text(&format!(
        ",\"public_metrics\":{{\"retweet_count\":{rt},\"reply_count\":{rep},\"like_count\":{fav},\"quote_count\":{quo},\"bookmark_count\":0,\"impression_count\":{}}}",
        fav * 40
    ));
    match kind {
        Kind::Retweet(op, _) => {
            b.text(&format!(
                ",\"referenced_tweets\":[{{\"type\":\"retweeted\",\"id\":\"{}\"}}]",
                op.id
            ));
        }
        Kind::Quote(op, _) => {
            b.text(&format!(
                ",\"referenced_tweets\":[{{\"type\":\"quoted\",\"id\":\"{}\"}}]",
                op.id
            ));
        }
        Kind::Post => {
            if let Some((rid, ru)) = &p.reply_to {
                b.text(&format!(",\"in_reply_to_user_id\":\"{}\",\"referenced_tweets\":[{{\"type\":\"replied_to\",\"id\":\"{rid}\"}}]", ru.id));
            }
        }
    }
    b.text(",\"entities\":{\"hashtags\":[");
    for (i, h) in p.hashtags.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        b.text(&format!(
            "{{\"start\":{},\"end\":{},\"tag\":",
            i * 10,
            i * 10 + h.len() + 1
        ))
        .string(h)
        .text("}");
    }
    b.text("],\"urls\":[");
    for (i, (tco, full, title)) in p.urls.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        b.text(&format!(
            "{{\"start\":{},\"end\":{},\"url\":",
            i * 24,
            i * 24 + 23
        ))
        .string(tco);
        b.text(",\"expanded_url\":")
            .string(full)
            .text(",\"display_url\":")
            .string(&truncate(full.trim_start_matches("https://"), 26));
        b.text(",\"status\":200,\"title\":")
            .string(title)
            .text(",\"unwound_url\":")
            .string(full)
            .text("}");
    }
    b.text("],\"mentions\":[");
    for (i, m) in p.mentions.iter().enumerate() {
        if i > 0 {
            b.text(",");
        }
        b.text(&format!(
            "{{\"start\":0,\"end\":{},\"username\":",
            m.screen_name.len() + 1
        ))
        .string(&m.screen_name);
        b.text(&format!(",\"id\":\"{}\"}}", m.id));
    }
    b.text("]}");
    b.text(",\"context_annotations\":[{\"domain\":{\"id\":\"66\",\"name\":\"Interests and Hobbies Category\",\"description\":\"A grouping of interests and hobbies entities, like Novelty Food or Destinations\"},\"entity\":{\"id\":\"847868745150119936\",\"name\":\"Home & family\",\"description\":\"Hobbies and interests\"}}]");
    if let Some(i) = p.place {
        b.text(&format!(
            ",\"geo\":{{\"place_id\":\"{:016x}\"}}",
            i * 7919 + 11
        ));
    }
    b.text("}");
}

fn v2_user(b: &mut TemplateBuilder, u: &User) {
    b.text(&format!("{{\"id\":\"{}\",\"name\":", u.id))
        .string(&u.name)
        .text(",\"username\":")
        .string(&u.screen_name);
    b.text(",\"created_at\":\"");
    time(b, false, TimeFormat::IsoMillis, u.created_ms);
    b.text("\",\"description\":").string(&u.description);
    if let Some(p) = u.location {
        b.text(",\"location\":").string(PLACES[p].0);
    }
    b.text(&format!(
        ",\"profile_image_url\":\"https://pbs.twimg.com/profile_images/{}/avatar_normal.jpg\",\"protected\":false,\"verified\":{},\"verified_type\":\"none\",\"public_metrics\":{{\"followers_count\":{},\"following_count\":{},\"tweet_count\":{},\"listed_count\":{},\"like_count\":{}}}}}",
        u.id % 1_000_000_007, u.verified, u.followers, u.friends, u.statuses, u.followers / 100, u.statuses / 3
    ));
}

fn v2(b: &mut TemplateBuilder, p: &Post, u: &User, kind: &Kind) {
    b.text("{\"data\":");
    v2_tweet(b, p, u, kind, true);
    b.text(",\"includes\":{\"users\":[");
    v2_user(b, u);
    for m in &p.mentions {
        b.text(",");
        v2_user(b, m);
    }
    if let Kind::Retweet(_, ou) | Kind::Quote(_, ou) = kind {
        b.text(",");
        v2_user(b, ou);
    }
    b.text("]");
    if let Kind::Retweet(op, ou) | Kind::Quote(op, ou) = kind {
        b.text(",\"tweets\":[");
        v2_tweet(b, op, ou, &Kind::Post, false);
        b.text("]");
    }
    if let Some(i) = p.place {
        let (full, country, cc, _, _) = PLACES[i];
        b.text(&format!(
            ",\"places\":[{{\"id\":\"{:016x}\",\"full_name\":",
            i * 7919 + 11
        ))
        .string(full);
        b.text(",\"country\":").string(country).text(&format!(
            ",\"country_code\":\"{cc}\",\"place_type\":\"city\"}}]"
        ));
    }
    b.text("}");
    b.hole(Hole::Rules { comma: true });
    b.text("}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{Body, Entry};
    use bytes::Bytes;

    fn render(t: &Arc<Template>, id: u64) -> serde_json::Value {
        let e = Entry {
            time_ms: 1_700_000_000_000,
            post_id: Some(id),
            body: Body::Template {
                tmpl: t.clone(),
                rules: Bytes::from_static(b"[{\"id\":\"1\",\"tag\":null}]"),
            },
        };
        let plain = e.plain();
        assert!(plain.ends_with(b"\r\n"));
        assert!(
            !plain[..plain.len() - 2].contains(&b'\r'),
            "no carriage return inside a record"
        );
        serde_json::from_slice(&plain).expect("generated records are valid JSON")
    }

    #[test]
    fn every_format_yields_valid_records_with_the_id_in_place() {
        for format in [Format::Original, Format::ActivityStreams, Format::V2] {
            let pool = pool(format, 7, 64);
            for t in &pool {
                let v = render(t, 1_234_567_890_123_456_789);
                let id = match format {
                    Format::Original => v["id_str"].as_str().map(str::to_string),
                    Format::ActivityStreams => v["id"]
                        .as_str()
                        .map(|s| s.rsplit(':').next().unwrap_or("").to_string()),
                    Format::V2 => v["data"]["id"].as_str().map(str::to_string),
                };
                assert_eq!(id.as_deref(), Some("1234567890123456789"), "{format}");
                assert!(
                    v.get("matching_rules").is_some() || v["gnip"].get("matching_rules").is_some()
                );
            }
        }
    }

    #[test]
    fn records_are_about_the_size_of_enriched_payloads() {
        for format in [Format::Original, Format::ActivityStreams, Format::V2] {
            let pool = pool(format, 3, 256);
            let avg = pool.iter().map(|t| t.fixed_len).sum::<usize>() / pool.len();
            assert!(
                (2200..=4800).contains(&avg),
                "{format}: average {avg} bytes"
            );
        }
    }

    #[test]
    fn the_pool_mixes_posts_retweets_and_quotes_and_is_deterministic() {
        let a = pool(Format::Original, 11, 200);
        let b = pool(Format::Original, 11, 200);
        let texts =
            |p: &[Arc<Template>]| p.iter().map(|t| t.match_text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&a), texts(&b));
        let values: Vec<_> = a.iter().map(|t| render(t, 5)).collect();
        assert!(values.iter().any(|v| v.get("retweeted_status").is_some()));
        assert!(values.iter().any(|v| v.get("quoted_status").is_some()));
        let langs: std::collections::HashSet<_> =
            values.iter().map(|v| v["lang"].to_string()).collect();
        assert!(langs.len() >= 4, "several languages: {langs:?}");
    }
}
