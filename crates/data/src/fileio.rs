//! Positioned reads (no shared file cursor, so one open file serves many threads) and the
//! streamed BLAKE3 digest of a file.

use std::fs::File;
use std::io;
use std::path::Path;

use crate::error::{Error, ErrorKind};

/// Reads at `offset` without moving any cursor; returns the count read (0 at the end).
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        std::os::windows::fs::FileExt::seek_read(file, buf, offset)
    }
}

/// Fills `buf` from `offset`, or fails with `UnexpectedEof`.
pub(crate) fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    while !buf.is_empty() {
        match read_at(file, buf, offset) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the file ended early")),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A content digest of a file's bytes, so that a run can record which data it used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileDigest {
    /// The file's length in bytes.
    pub bytes: u64,
    /// The BLAKE3 hash of the file's bytes.
    pub blake3: [u8; 32],
}

impl FileDigest {
    /// The BLAKE3 hash in lowercase hex (64 characters), as `b3sum` prints it.
    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.blake3).to_hex().to_string()
    }

    pub(crate) fn from_hasher(hasher: &blake3::Hasher, bytes: u64) -> Self {
        FileDigest { bytes, blake3: *hasher.finalize().as_bytes() }
    }
}

impl std::fmt::Display for FileDigest {
    /// `blake3:<hex>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blake3:{}", self.hex())
    }
}

/// The digest of the file at `path`, read in 1 MiB chunks.
pub fn digest_file(path: impl AsRef<Path>) -> Result<FileDigest, Error> {
    let path = path.as_ref();
    let io_error = |e| Error::file(path, ErrorKind::Io(e));
    let file = File::open(path).map_err(io_error)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    loop {
        let n = match read_at(&file, &mut buf, offset) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(e)),
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        offset += n as u64;
    }
    Ok(FileDigest::from_hasher(&hasher, offset))
}
