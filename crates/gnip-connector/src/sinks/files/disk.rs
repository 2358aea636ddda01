//! Durable file-system steps for the files sink: creating directories so
//! that they survive a power cut, syncing a directory after a rename, and
//! the writer under the gzip encoder, which can be cut off so that an
//! abandoned encoder writes nothing more.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// Makes the entries of `dir` (a new file, a rename, a removal) durable.
///
/// A rename or a create is recorded in the directory, not in the file, so
/// syncing the file alone does not make the new name survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents, syncing each parent in which an
/// entry was created so that the whole path survives a power cut.
pub(crate) fn create_dir_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.is_dir() {
        missing.push(cur);
        match cur.parent() {
            Some(p) if !p.as_os_str().is_empty() => cur = p,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => continue,
            Err(e) => return Err(e),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// The file under a gzip encoder. It counts the bytes handed to the
/// kernel, and once cut off it refuses every write, so that dropping an
/// abandoned encoder (whose `Drop` tries to finish the stream) adds nothing
/// after the last durable point.
pub(crate) struct PartWriter {
    pub(crate) file: File,
    /// Bytes written to the file so far.
    pub(crate) len: u64,
    cut: bool,
}

impl PartWriter {
    pub(crate) fn new(file: File) -> Self {
        PartWriter {
            file,
            len: 0,
            cut: false,
        }
    }

    /// Refuses every later write.
    pub(crate) fn cut_off(&mut self) {
        self.cut = true;
    }
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cut {
            return Err(io::Error::other("file abandoned after a failed write"));
        }
        let n = self.file.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // `File` has no user-space buffer; durability is `sync_data`.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_nested_directories() {
        let root = tempfile::tempdir().unwrap();
        let d = root.path().join("2026/12/03/17");
        create_dir_durable(&d).unwrap();
        assert!(d.is_dir());
        create_dir_durable(&d).unwrap();
        sync_dir(&d).unwrap();
    }

    #[test]
    fn cut_off_writer_writes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("f");
        let mut w = PartWriter::new(File::create(&path).unwrap());
        w.write_all(b"abc").unwrap();
        w.cut_off();
        assert!(w.write_all(b"def").is_err());
        assert_eq!(w.len, 3);
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
    }
}
