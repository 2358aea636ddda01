//! A validating walk over JSON text for the classifier's wire structs.
//!
//! serde_json skips an unread value with a stack of open containers kept in
//! a buffer that every `Deserializer` starts empty, so the first skip of a
//! nested value in each document allocates. Here objects and arrays are
//! walked key by key, unread values are skipped by [`Scanner::skip_value`]
//! with a fixed bit stack, and only scalars and keys are handed to
//! serde_json, as slices holding exactly that scalar: nothing is skipped by
//! serde_json, so nothing it does allocates (bar escaped strings it must
//! copy to read).
//!
//! The walk accepts and refuses what serde_json would for the same types,
//! except that it refuses nesting deeper than [`MAX_DEPTH`]; callers fall back
//! to serde_json on any error, which also words the error as before.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Error;

/// The newtype name under which [`Walk`] hands a value over as its raw
/// bytes (`visit_borrowed_bytes`). serde_json calls `visit_newtype_struct`
/// for it instead, as for any name it does not know.
pub(crate) const RAW: &str = "$gnip_client::scan::Raw";

/// Open containers the skipper can track, one bit each. Real records nest
/// a dozen levels; serde_json itself refuses to read values nested deeper
/// than 128.
pub(crate) const MAX_DEPTH: u32 = 128;

/// Deserializes `T` from one JSON document with nothing after it but
/// whitespace.
pub(crate) fn from_slice<'a, T: de::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Error> {
    let mut sc = Scanner { bytes, pos: 0 };
    let value = T::deserialize(Walk { sc: &mut sc })?;
    sc.skip_ws();
    if sc.pos != bytes.len() {
        return Err(fail("trailing characters"));
    }
    Ok(value)
}

#[cold]
fn fail(what: &str) -> Error {
    de::Error::custom(what)
}

/// A position in a JSON text.
pub(crate) struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    #[cfg(test)]
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Scanner { bytes, pos: 0 }
    }

    #[cfg(test)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(fail("unexpected byte"))
        }
    }

    /// Skips one value after optional whitespace, checking it as strictly
    /// as serde_json's own skipping does.
    pub(crate) fn skip_value(&mut self) -> Result<(), Error> {
        // Bit `d` is set when the container at depth `d + 1` is an object.
        let mut objects: u128 = 0;
        let mut depth: u32 = 0;
        loop {
            // A value starts here.
            self.skip_ws();
            match self.peek() {
                Some(open @ (b'{' | b'[')) => {
                    if depth == MAX_DEPTH {
                        return Err(fail("nesting too deep to skip"));
                    }
                    self.pos += 1;
                    self.skip_ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.pos += 1;
                    } else {
                        if open == b'{' {
                            objects |= 1 << depth;
                            self.skip_key()?;
                        } else {
                            objects &= !(1 << depth);
                        }
                        depth += 1;
                        continue;
                    }
                }
                _ => self.skip_scalar()?,
            }
            // A value ended here: close containers until one goes on.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let in_object = objects & (1 << (depth - 1)) != 0;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        if in_object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(fail("expected `,` or the end of a container")),
                }
                self.pos += 1;
                depth -= 1;
            }
        }
    }

    /// Skips `"key" :`.
    #[inline]
    fn skip_key(&mut self) -> Result<(), Error> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return Err(fail("key must be a string"));
        }
        self.skip_string()?;
        self.expect(b':')
    }

    /// Skips a string, number or literal at the current position.
    #[inline]
    pub(crate) fn skip_scalar(&mut self) -> Result<(), Error> {
        match self.peek() {
            Some(b'"') => self.skip_string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.skip_number(),
            Some(b't') => self.skip_literal(b"true"),
            Some(b'f') => self.skip_literal(b"false"),
            Some(b'n') => self.skip_literal(b"null"),
            _ => Err(fail("expected a value")),
        }
    }

    #[inline]
    fn skip_literal(&mut self, word: &[u8]) -> Result<(), Error> {
        if self
            .bytes
            .get(self.pos..)
            .is_some_and(|r| r.starts_with(word))
        {
            self.pos += word.len();
            Ok(())
        } else {
            Err(fail("expected a literal"))
        }
    }

    #[inline]
    fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    #[inline]
    fn skip_number(&mut self) -> Result<(), Error> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            // One leading zero only.
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(fail("invalid number"));
                }
            }
            Some(b'1'..=b'9') => {
                self.skip_digits();
            }
            _ => return Err(fail("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.skip_digits() == 0 {
                return Err(fail("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                return Err(fail("invalid number"));
            }
        }
        Ok(())
    }

    /// Skips a string from its opening quote; true when it holds an
    /// escape. Control characters and bad escapes are refused; UTF-8 is not
    /// checked, as serde_json does not check it in strings it skips.
    #[inline]
    fn skip_string(&mut self) -> Result<bool, Error> {
        let bytes = self.bytes;
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            i = find_special(bytes, i);
            match bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    match bytes.get(i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                        Some(b'u') => {
                            let hex = bytes.get(i + 2..i + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(fail("invalid escape"));
                            }
                            i += 6;
                        }
                        _ => return Err(fail("invalid escape")),
                    }
                }
                Some(_) => return Err(fail("control character in string")),
                None => return Err(fail("end of input in string")),
            }
        }
    }
}

/// The index of the first `"`, `\` or control character at or after
/// `from`, or the length. Eight bytes at a time (Mycroft's zero-byte test,
/// as serde_json does), since string bodies are most of a record's bytes.
#[inline(always)]
fn find_special(bytes: &[u8], mut at: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    // Keys and short values end within a few bytes; look before loading
    // words.
    match bytes.get(at) {
        Some(&c) if c == b'"' || c == b'\\' || c < 0x20 => return at,
        Some(_) => {}
        None => return at,
    }
    while let Some(chunk) = bytes.get(at..at + 8) {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let b = w ^ (ONES * u64::from(b'\\'));
        let backslash = b.wrapping_sub(ONES) & !b;
        let hit = (ctrl | quote | backslash) & HIGH;
        if hit != 0 {
            // The lowest flagged byte is exact: borrows only run upwards,
            // so a false flag can only follow a true one.
            return at + hit.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    while let Some(&c) = bytes.get(at) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return at;
        }
        at += 1;
    }
    at
}

/// A serde `Deserializer` for the value at the scanner's position.
pub(crate) struct Walk<'a, 's> {
    sc: &'s mut Scanner<'a>,
}

impl<'de> Walk<'de, '_> {
    /// The scalar at the position, read by serde_json from a slice holding
    /// just that scalar.
    fn scalar<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let start = self.sc.pos;
        self.sc.skip_scalar()?;
        let bytes: &'de [u8] = &self.sc.bytes[start..self.sc.pos];
        serde_json::Deserializer::from_slice(bytes).deserialize_any(visitor)
    }
}

impl<'de> Deserializer<'de> for Walk<'de, '_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.sc.skip_ws();
        match self.sc.peek() {
            Some(b'{') => {
                self.sc.pos += 1;
                let value = visitor.visit_map(MapWalk {
                    sc: &mut *self.sc,
                    first: true,
                })?;
                self.sc.expect(b'}')?;
                Ok(value)
            }
            Some(b'[') => {
                self.sc.pos += 1;
                let value = visitor.visit_seq(SeqWalk {
                    sc: &mut *self.sc,
                    first: true,
                })?;
                self.sc.expect(b']')?;
                Ok(value)
            }
            _ => self.scalar(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.sc.skip_value()?;
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.sc.skip_ws();
        if self.sc.peek() == Some(b'n') {
            self.sc.skip_literal(b"null")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == RAW {
            self.sc.skip_ws();
            let start = self.sc.pos;
            self.sc.skip_value()?;
            let bytes: &'de [u8] = &self.sc.bytes[start..self.sc.pos];
            visitor.visit_borrowed_bytes(bytes)
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier
    }
}

struct MapWalk<'a, 's> {
    sc: &'s mut Scanner<'a>,
    first: bool,
}

impl<'de> MapAccess<'de> for MapWalk<'de, '_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        self.sc.skip_ws();
        match self.sc.peek() {
            Some(b'}') => return Ok(None),
            Some(b',') if !self.first => {
                self.sc.pos += 1;
                self.sc.skip_ws();
            }
            _ if self.first => {}
            _ => return Err(fail("expected `,` or `}`")),
        }
        self.first = false;
        if self.sc.peek() != Some(b'"') {
            return Err(fail("key must be a string"));
        }
        let start = self.sc.pos;
        let escaped = self.sc.skip_string()?;
        let key: &'de [u8] = &self.sc.bytes[start..self.sc.pos];
        self.sc.expect(b':')?;
        if escaped {
            seed.deserialize(&mut serde_json::Deserializer::from_slice(key))
                .map(Some)
        } else {
            seed.deserialize(Key(&key[1..key.len() - 1])).map(Some)
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Walk { sc: &mut *self.sc })
    }
}

struct SeqWalk<'a, 's> {
    sc: &'s mut Scanner<'a>,
    first: bool,
}

impl<'de> SeqAccess<'de> for SeqWalk<'de, '_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.sc.skip_ws();
        match self.sc.peek() {
            Some(b']') => return Ok(None),
            Some(b',') if !self.first => self.sc.pos += 1,
            _ if self.first => {}
            _ => return Err(fail("expected `,` or `]`")),
        }
        self.first = false;
        seed.deserialize(Walk { sc: &mut *self.sc }).map(Some)
    }
}

/// A key without escapes, as the bytes between its quotes. serde_json
/// hands such keys over the same way to the seeds used here (identifiers,
/// `IgnoredAny`, bytes): raw to `deserialize_bytes`, checked as UTF-8 for
/// the rest. It parses quoted numbers for integer keys; no seed asks that.
struct Key<'a>(&'a [u8]);

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match std::str::from_utf8(self.0) {
            Ok(s) => visitor.visit_borrowed_str(s),
            Err(_) => Err(fail("key is not UTF-8")),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.0)
    }

    // Struct field names are matched as bytes as readily as as strings
    // (derived identifiers take both), and an ASCII key needs no UTF-8
    // check: most keys of a record are read only to be matched.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.is_ascii() {
            visitor.visit_borrowed_bytes(self.0)
        } else {
            self.deserialize_any(visitor)
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_bytes(self.0)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        ignored_any option
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::ops::Range;
    use std::path::Path;

    use proptest::prelude::*;
    use serde::de::IgnoredAny;
    use serde_json::Value;

    use super::*;

    /// Every real fixture object as one line.
    pub(crate) fn fixture_lines() -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/real")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                match path.extension().and_then(|e| e.to_str()) {
                    Some("jsonl") => lines.extend(
                        bytes
                            .split(|&b| b == b'\n')
                            .filter(|l| !l.is_empty())
                            .map(<[u8]>::to_vec),
                    ),
                    // Pretty-printed files stay as they are: whitespace
                    // everywhere is worth walking too.
                    Some("json") => lines.push(bytes),
                    _ => {}
                }
            }
        }
        lines.sort();
        assert!(lines.len() > 100);
        lines
    }

    /// The byte range of a key (quotes included) and of its value.
    type Entry = (Range<usize>, Range<usize>);

    /// The entries of a top-level object, in order.
    fn top_level(line: &[u8]) -> Result<Vec<Entry>, Error> {
        let mut sc = Scanner::new(line);
        let mut out = Vec::new();
        sc.expect(b'{')?;
        sc.skip_ws();
        if sc.peek() == Some(b'}') {
            sc.pos += 1;
        } else {
            loop {
                sc.skip_ws();
                let key_start = sc.pos();
                if sc.peek() != Some(b'"') {
                    return Err(fail("key"));
                }
                sc.skip_string()?;
                let key = key_start..sc.pos();
                sc.expect(b':')?;
                sc.skip_ws();
                let start = sc.pos();
                sc.skip_value()?;
                out.push((key, start..sc.pos()));
                sc.skip_ws();
                match sc.peek() {
                    Some(b',') => sc.pos += 1,
                    Some(b'}') => {
                        sc.pos += 1;
                        break;
                    }
                    _ => return Err(fail("end")),
                }
            }
        }
        sc.skip_ws();
        if sc.pos() != line.len() {
            return Err(fail("trailing"));
        }
        Ok(out)
    }

    fn skips(text: &[u8]) -> bool {
        from_slice::<IgnoredAny>(text).is_ok()
    }

    fn serde_skips(text: &[u8]) -> bool {
        serde_json::from_slice::<IgnoredAny>(text).is_ok()
    }

    /// Skipping, walking into a tree and serde_json all agree on `text`.
    fn agree(text: &[u8]) -> Result<(), TestCaseError> {
        let expected = serde_skips(text);
        prop_assert_eq!(
            skips(text),
            expected,
            "skip: {}",
            String::from_utf8_lossy(text)
        );
        let walked = from_slice::<Value>(text).ok();
        prop_assert_eq!(walked, serde_json::from_slice::<Value>(text).ok());
        Ok(())
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        let cases: &[&[u8]] = &[
            br#"{}"#,
            br#"{"a":"}{][\"","b":["]",{"c":"{"}],"d":"\\"}"#,
            br#"{"a":"\u00e9\/\b\f\n\r\t","b":-0.5e+10,"c":[true,false,null,0,-0,1E3]}"#,
            br#"  { "a" : [ 1 , { } , [ ] ] }  "#,
            br#"[1,2]"#,
            br#""text""#,
            br#"12"#,
            br#"{"a":1}{"b":2}"#,
            br#"{"a":1,}"#,
            br#"{"a":[1,]}"#,
            br#"{,"a":1}"#,
            br#"{"a" 1}"#,
            br#"{"a":1 "b":2}"#,
            br#"{"a":[}"#,
            br#"{"a":{]}"#,
            br#"{"a":[1}]"#,
            br#"{1:2}"#,
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":1e}"#,
            br#"{"a":-}"#,
            br#"{"a":.5}"#,
            br#"{"a":+1}"#,
            br#"{"a":tru}"#,
            br#"{"a":nul}"#,
            br#"{"a":"\x"}"#,
            br#"{"a":"\u12"}"#,
            br#"{"a":"\u12g4"}"#,
            br#"{"a":"\ud800"}"#,
            b"{\"a\":\"tab\there\"}",
            b"{\"a\":\"\xff\xfe\"}",
            br#"{"a":"#,
            br#"{"a":"open"#,
            br#"{"a":[1,2"#,
            br#"{"a":{"b":{}"#,
            b"",
            b"   ",
            b"\xff",
        ];
        for case in cases {
            agree(case).unwrap();
        }
    }

    #[test]
    fn every_truncation_of_a_record_is_refused() {
        let line = br#"{"a":{"b":[1,"x\"}",{"c":null}]},"d":-1.5e3,"e":"\u00e9"}"#;
        assert!(skips(line));
        for end in 0..line.len() {
            assert!(!skips(&line[..end]), "accepted {end} bytes");
        }
    }

    #[test]
    fn nesting_up_to_the_limit_is_skipped_and_deeper_is_refused() {
        let depth = MAX_DEPTH as usize;
        let nested = |n: usize| {
            let mut s = String::from(r#"{"x":"#);
            for i in 0..n {
                s.push_str(if i % 2 == 0 { r#"{"k":"# } else { "[" });
            }
            s.push('1');
            for i in (0..n).rev() {
                s.push(if i % 2 == 0 { '}' } else { ']' });
            }
            s.push('}');
            s
        };
        // The wrapping object is one level of its own.
        assert!(skips(nested(depth - 1).as_bytes()));
        assert!(serde_skips(nested(depth).as_bytes()));
        assert!(!skips(nested(depth).as_bytes()));
        assert!(!skips(nested(10_000).as_bytes()));
        // Mismatched closers at depth are still caught.
        let bad = nested(depth - 1).replacen("]}", "}}", 1);
        assert!(!skips(bad.as_bytes()) && !serde_skips(bad.as_bytes()));
    }

    #[test]
    fn keys_are_walked_in_order_with_duplicates_kept() {
        let line = br#"{"a":1,"a":{"b":"}"},"c\"d":[]}"#;
        let keys: Vec<&[u8]> = top_level(line)
            .unwrap()
            .into_iter()
            .map(|(k, _)| &line[k])
            .collect();
        assert_eq!(keys, [&br#""a""#[..], br#""a""#, br#""c\"d""#]);
        assert!(top_level(b"[1]").is_err());
        assert!(top_level(br#"{"a":1"#).is_err());
    }

    #[test]
    fn top_level_ranges_match_serde_json_on_every_fixture() {
        for line in fixture_lines() {
            let map: serde_json::Map<String, Value> = serde_json::from_slice(&line).unwrap();
            let entries = top_level(&line).unwrap();
            assert_eq!(entries.len(), map.len());
            for (key, value) in entries {
                let key: String = serde_json::from_slice(&line[key]).unwrap();
                let value: Value = serde_json::from_slice(&line[value]).unwrap();
                assert_eq!(Some(&value), map.get(&key), "{key}");
            }
            agree(&line).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn cut_fixtures_agree_with_serde_json(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>()) {
            let lines = fixture_lines();
            let line = &lines[pick.index(lines.len())];
            let cut = &line[..at.index(line.len())];
            agree(cut)?;
            prop_assert!(top_level(cut).is_err());
        }

        #[test]
        fn damaged_fixtures_agree_with_serde_json(
            pick in any::<prop::sample::Index>(),
            edits in proptest::collection::vec(
                (any::<prop::sample::Index>(), prop::sample::select(&b"{}[]\",:\\ 0-.eEtnu\x01\xff"[..])),
                1..4,
            ),
        ) {
            let lines = fixture_lines();
            let mut line = lines[pick.index(lines.len())].clone();
            for (at, byte) in edits {
                let i = at.index(line.len());
                line[i] = byte;
            }
            agree(&line)?;
            // Where both accept, the ranges still name the values serde_json
            // reads (the last of duplicate keys wins in a map).
            if let (Ok(entries), Ok(map)) = (
                top_level(&line),
                serde_json::from_slice::<serde_json::Map<String, Value>>(&line),
            ) {
                let mut last = serde_json::Map::new();
                for (key, value) in entries {
                    let key: String = serde_json::from_slice(&line[key]).unwrap();
                    last.insert(key, serde_json::from_slice(&line[value]).unwrap());
                }
                prop_assert_eq!(last, map);
            }
        }

        #[test]
        fn generated_values_agree_with_serde_json(text in json_text()) {
            agree(text.as_bytes())?;
            prop_assert!(skips(text.as_bytes()));
        }
    }

    /// Valid JSON texts with deep-ish nesting and awkward strings.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e300f64..1e300).prop_map(Value::from),
            "[\\\\\"{}\\[\\]:, a-z\u{e9}\u{1F600}\u{0}-\u{1f}]{0,12}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(8, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-z{}\\[\\]\"\\\\]{0,4}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        });
        (value, any::<bool>()).prop_map(|(v, pretty)| {
            if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            }
        })
    }
}
