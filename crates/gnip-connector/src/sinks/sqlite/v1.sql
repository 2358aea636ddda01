-- One row per post, keyed by post id. Written once: a post seen again
-- (replay after a crash, backfill overlap, redundant connections) is
-- ignored.
CREATE TABLE posts (
    id           INTEGER PRIMARY KEY,   -- post id
    author_id    INTEGER,               -- user id of the author
    posted_at    INTEGER,               -- creation time, epoch milliseconds
    lang         TEXT,                  -- language code (twitter_lang / lang)
    kind         TEXT NOT NULL CHECK (kind IN ('post', 'share')),
    retweeted_id INTEGER,               -- for a share: the post shared
    quoted_id    INTEGER,               -- for a quote: the post quoted
    format       TEXT NOT NULL,         -- 'activity_streams', 'original' or 'v2'
    received_at  INTEGER NOT NULL,      -- when the connector took it, epoch ms
    partition    INTEGER NOT NULL,      -- stream partition (0 without partitions)
    raw          TEXT NOT NULL          -- the record exactly as received
);
-- Compliance: a user event removes the user's posts; a post delete also
-- removes its retweets and may touch its quotes.
CREATE INDEX posts_author_id ON posts (author_id);
CREATE INDEX posts_retweeted_id ON posts (retweeted_id) WHERE retweeted_id IS NOT NULL;
CREATE INDEX posts_quoted_id ON posts (quoted_id) WHERE quoted_id IS NOT NULL;

-- The rules each post matched; written with the post, so a post seen
-- again adds no rows. Removing a post removes its rules.
CREATE TABLE matching_rules (
    post_id INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    rule_id INTEGER,                    -- PowerTrack 2.0 and v2 rule id
    tag     TEXT,                       -- rule tag, NULL when none
    value   TEXT                        -- rule text (PowerTrack 1.0 only)
);
CREATE INDEX matching_rules_post_id ON matching_rules (post_id);
CREATE INDEX matching_rules_rule_id ON matching_rules (rule_id);

-- Compliance events as received, to be applied to the stored data.
CREATE TABLE compliance_events (
    seq         INTEGER PRIMARY KEY,    -- arrival order
    kind        TEXT NOT NULL,          -- 'delete', 'user_protect', 'scrub_geo', ...
    post_id     INTEGER,                -- post concerned (post-level events)
    user_id     INTEGER,                -- user concerned
    at          INTEGER,                -- when it happened, epoch milliseconds
    received_at INTEGER NOT NULL,
    partition   INTEGER NOT NULL,
    raw         TEXT NOT NULL UNIQUE    -- the event as received; one row per event
);
CREATE INDEX compliance_events_post_id ON compliance_events (post_id);
CREATE INDEX compliance_events_user_id ON compliance_events (user_id);

-- In-stream system messages (info, warn, error; disconnect notices).
CREATE TABLE system_messages (
    seq         INTEGER PRIMARY KEY,
    level       TEXT NOT NULL,          -- 'info', 'warn' or 'error'
    message     TEXT NOT NULL,
    sent_at     INTEGER,                -- the message's own time, epoch ms
    received_at INTEGER NOT NULL,
    partition   INTEGER NOT NULL,
    raw         TEXT NOT NULL,
    UNIQUE (received_at, partition, raw)
);

-- Records no other table can hold: unknown shapes, and records whose keys
-- cannot be read. Kept verbatim so that nothing taken is lost.
CREATE TABLE other_records (
    seq         INTEGER PRIMARY KEY,
    reason      TEXT NOT NULL,          -- 'unknown', or why it was set aside
    received_at INTEGER NOT NULL,
    partition   INTEGER NOT NULL,
    raw         TEXT NOT NULL,          -- a BLOB when not valid UTF-8
    UNIQUE (received_at, partition, raw)
);
