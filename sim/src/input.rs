//! Reading input files (traces, expectations, reports, transcripts) with a
//! bound on their size, so that a huge file or an endless one
//! (`/dev/zero`) is refused with a clear error instead of eating memory
//! until the process dies.
//!
//! # Invariants
//!
//! - Nothing reads more than the limit plus one byte of a file, whatever
//!   its metadata says (devices and pipes report a size of 0).
//! - The limit is process-wide: [`set_limit`] (the commands' `--max-input-mib`)
//!   changes it for every later read; the default is [`DEFAULT_LIMIT`].

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The default bound, in bytes: 64 MiB, far above any trace, report or
/// expectations file the suite writes (the largest are a few MB).
pub const DEFAULT_LIMIT: u64 = 64 << 20;

static LIMIT: AtomicU64 = AtomicU64::new(DEFAULT_LIMIT);

/// Sets the bound, in bytes, for every later [`read_text`].
pub fn set_limit(bytes: u64) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The bound in force, in bytes.
pub fn limit() -> u64 {
    LIMIT.load(Ordering::Relaxed)
}

/// Reads `path` as UTF-8 text, at most [`limit`] bytes.
///
/// # Errors
/// `std::io::Error`s of reading, as they are; a file over the limit
/// (kind `FileTooLarge`) or not UTF-8 (kind `InvalidData`), each with a
/// message that names the limit and how to raise it, or what was expected.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let limit = limit();
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!(
                "larger than the {} MiB an input file may be (`--max-input-mib N` raises the bound)",
                limit >> 20
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (byte {} is not part of a UTF-8 character); expected JSON or TOML text",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}
