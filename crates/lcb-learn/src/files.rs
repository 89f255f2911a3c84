//! Atomic file writes and checksums, shared by checkpoints and reports.

use std::io::Write;
use std::path::Path;

/// A failed step of [`write_atomic`]: the action that failed and its cause.
#[derive(Debug)]
pub struct AtomicWriteError {
    /// `create a temporary file for`, `write`, `flush` or `rename a temporary file to`.
    pub action: &'static str,
    pub source: std::io::Error,
}

/// Writes `bytes` to a temporary file in `dir`, flushes it to disk and
/// renames it to `path`, so a reader never sees a half-written file. On
/// failure the temporary file is removed. The file is readable by other
/// users on Unix (`tempfile` alone creates it readable by the owner only).
pub fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), AtomicWriteError> {
    let fail = |action: &'static str| move |source| AtomicWriteError { action, source };

    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut file = builder.tempfile_in(dir).map_err(fail("create a temporary file for"))?;
    file.write_all(bytes).map_err(fail("write"))?;
    file.as_file().sync_all().map_err(fail("flush"))?;
    file.persist(path)
        .map_err(|err| fail("rename a temporary file to")(err.error))?;
    Ok(())
}

/// FNV-1a 64-bit hash as 16 hex digits: cheap and enough to detect a
/// damaged or swapped file (not an integrity guarantee against tampering).
pub fn fnv1a64_hex(bytes: &[u8]) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = bytes
        .iter()
        .fold(OFFSET, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        // Reference values of the FNV-1a 64-bit hash.
        assert_eq!(fnv1a64_hex(b""), "cbf29ce484222325");
        assert_eq!(fnv1a64_hex(b"a"), "af63dc4c8601ec8c");
        assert_eq!(fnv1a64_hex(b"foobar"), "85944171f73967e8");
    }

    #[cfg(unix)]
    #[test]
    fn written_file_is_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(dir.path(), &path, b"data").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    }
}
