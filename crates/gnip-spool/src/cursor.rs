//! Reader cursors on disk, one small file per reader under `dir/cursors/`.
//!
//! A cursor is saved by writing a temporary file, fsyncing it, renaming it
//! over the old one and fsyncing the directory, so after a crash the file
//! holds either the old cursor or the new one, never a mix, and never comes
//! back from before a save the reader was told had succeeded.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use crate::Position;
use crate::error::SpoolError;
use crate::segment::fsync_dir;

const MAGIC: &[u8; 4] = b"GSC1";
const FILE_LEN: usize = 24;
const EXT: &str = ".cur";
const TEMP_EXT: &str = ".cur.tmp";

/// Checks that a reader name can name a file safely.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn encode(pos: Position) -> [u8; FILE_LEN] {
    let mut out = [0u8; FILE_LEN];
    out[0..4].copy_from_slice(MAGIC);
    out[4..12].copy_from_slice(&pos.offset.to_le_bytes());
    out[12..20].copy_from_slice(&pos.seq.to_le_bytes());
    let crc = crc32fast::hash(&out[0..20]);
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<Position> {
    if bytes.len() != FILE_LEN || &bytes[0..4] != MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(bytes[20..24].try_into().ok()?);
    if crc32fast::hash(&bytes[0..20]) != crc {
        return None;
    }
    Some(Position {
        offset: u64::from_le_bytes(bytes[4..12].try_into().ok()?),
        seq: u64::from_le_bytes(bytes[12..20].try_into().ok()?),
    })
}

/// The path of the cursor file of reader `name`.
pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{EXT}"))
}

/// Saves a cursor durably (temporary file, fsync, rename, fsync directory).
pub(crate) fn save(dir: &Path, name: &str, pos: Position) -> Result<(), SpoolError> {
    let temp = dir.join(format!("{name}{TEMP_EXT}"));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&temp)
        .map_err(|e| SpoolError::io("create cursor", &temp, e))?;
    file.write_all(&encode(pos))
        .map_err(|e| SpoolError::io("write cursor", &temp, e))?;
    file.sync_all()
        .map_err(|e| SpoolError::io("fsync cursor", &temp, e))?;
    let target = path(dir, name);
    fs::rename(&temp, &target).map_err(|e| SpoolError::io("rename cursor", &target, e))?;
    fsync_dir(dir)
}

/// Removes a cursor durably.
pub(crate) fn remove(dir: &Path, name: &str) -> Result<(), SpoolError> {
    let target = path(dir, name);
    match fs::remove_file(&target) {
        Ok(()) => fsync_dir(dir),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::io("remove cursor", &target, e)),
    }
}

/// Loads every saved cursor, and removes temporary files a crash left.
///
/// # Errors
///
/// [`SpoolError::Corrupt`] naming the file when a cursor file does not hold.
pub(crate) fn load_all(dir: &Path) -> Result<BTreeMap<String, Position>, SpoolError> {
    let mut out = BTreeMap::new();
    let entries = fs::read_dir(dir).map_err(|e| SpoolError::io("list cursors", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SpoolError::io("list cursors", dir, e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let entry_path = entry.path();
        if file_name.ends_with(TEMP_EXT) {
            fs::remove_file(&entry_path)
                .map_err(|e| SpoolError::io("remove temporary cursor", &entry_path, e))?;
            continue;
        }
        let Some(name) = file_name.strip_suffix(EXT) else {
            continue;
        };
        if !valid_name(name) {
            continue;
        }
        let mut bytes = Vec::with_capacity(FILE_LEN);
        File::open(&entry_path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| SpoolError::io("read cursor", &entry_path, e))?;
        let pos = decode(&bytes).ok_or_else(|| SpoolError::Corrupt {
            path: entry_path.clone(),
            offset: 0,
            reason: "cursor file does not hold (length, magic or checksum)".into(),
        })?;
        out.insert(name.to_string(), pos);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_cursor_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pos = Position {
            offset: 4096,
            seq: 12,
        };
        save(dir.path(), "sqlite", pos).expect("save");
        save(dir.path(), "files", Position::default()).expect("save");
        let all = load_all(dir.path()).expect("load");
        assert_eq!(all.get("sqlite"), Some(&pos));
        assert_eq!(all.len(), 2);
        remove(dir.path(), "files").expect("remove");
        assert_eq!(load_all(dir.path()).expect("load").len(), 1);
    }

    #[test]
    fn damaged_cursor_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        save(dir.path(), "a", Position { offset: 1, seq: 1 }).expect("save");
        let p = path(dir.path(), "a");
        let mut bytes = fs::read(&p).expect("read");
        bytes[5] ^= 0xff;
        fs::write(&p, bytes).expect("write");
        let err = load_all(dir.path()).expect_err("must refuse");
        assert!(err.to_string().contains("a.cur"), "{err}");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_name("sqlite-main_1.x"));
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
