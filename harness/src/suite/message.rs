//! What a scenario's clients send, as a description rather than bytes.
//!
//! A generated message of a gigabyte is never held: its length, digest,
//! bytes at any place and file are all computed from the rule that makes
//! it. Reading the suite (`--list`, a usage error) then costs nothing
//! however large its messages are, and a run writes each message once, a
//! chunk at a time.

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

/// The bytes one generated chunk holds while they are written or hashed.
const CHUNK: usize = 64 * 1024;

/// The period of the `pattern` generator: a prime, so a lost, doubled or
/// reordered chunk of any power-of-two size changes the bytes.
const PATTERN_PERIOD: usize = 251;

#[derive(Debug, Clone)]
enum Source {
    /// Spelled out in the scenario (text, hex) or small (all byte values).
    Bytes(Vec<u8>),
    /// `size` bytes of i mod 251.
    Pattern { size: usize },
}

/// A scenario's message.
#[derive(Debug, Clone)]
pub struct Message {
    source: Source,
    digest: OnceLock<u64>,
}

impl PartialEq<[u8]> for Message {
    fn eq(&self, other: &[u8]) -> bool {
        self.len() == other.len() && self.first_difference(other).is_none()
    }
}

impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Message {
        Message {
            source: Source::Bytes(bytes),
            digest: OnceLock::new(),
        }
    }
}

impl From<&[u8]> for Message {
    fn from(bytes: &[u8]) -> Message {
        Message::from(bytes.to_vec())
    }
}

impl Message {
    /// `size` bytes of i mod 251, never held whole.
    pub fn pattern(size: usize) -> Message {
        Message {
            source: Source::Pattern { size },
            digest: OnceLock::new(),
        }
    }

    pub fn len(&self) -> usize {
        match &self.source {
            Source::Bytes(b) => b.len(),
            Source::Pattern { size } => *size,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes from `start`, up to [`CHUNK`] of them.
    fn chunk_at(&self, start: usize) -> std::borrow::Cow<'_, [u8]> {
        let end = (start + CHUNK).min(self.len());
        match &self.source {
            Source::Bytes(b) => std::borrow::Cow::Borrowed(&b[start..end]),
            Source::Pattern { .. } => {
                std::borrow::Cow::Owned((start..end).map(|i| (i % PATTERN_PERIOD) as u8).collect())
            }
        }
    }

    /// Calls `each` with the message a chunk at a time, in order.
    fn for_each_chunk(
        &self,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut at = 0;
        while at < self.len() {
            let chunk = self.chunk_at(at);
            each(&chunk)?;
            at += chunk.len();
        }
        Ok(())
    }

    /// The digest `wire::conversation::digest` gives the same bytes,
    /// computed once, a chunk at a time.
    pub fn digest(&self) -> u64 {
        *self.digest.get_or_init(|| match &self.source {
            Source::Bytes(b) => wire::conversation::digest(b),
            Source::Pattern { .. } => {
                let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
                let _ = self.for_each_chunk(|c| {
                    hasher.update(c);
                    Ok(())
                });
                hasher.digest()
            }
        })
    }

    /// Where `other` first differs from the message: the first unequal
    /// byte, or the shorter length; `None` when they are the same.
    pub fn first_difference(&self, other: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at < self.len().min(other.len()) {
            let chunk = self.chunk_at(at);
            let theirs = &other[at..(at + chunk.len()).min(other.len())];
            if let Some(i) = chunk.iter().zip(theirs).position(|(a, b)| a != b) {
                return Some(at + i);
            }
            at += chunk.len();
        }
        (self.len() != other.len()).then_some(self.len().min(other.len()))
    }

    /// Writes the message to `path`, a chunk at a time.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        self.for_each_chunk(|c| file.write_all(c))?;
        file.flush()
    }

    /// Whether the file at `path` holds this message (by length, then by
    /// content): a copy left by an older run is never taken for this one.
    pub fn is_in(&self, path: &Path) -> bool {
        let Ok(meta) = std::fs::metadata(path) else {
            return false;
        };
        if meta.len() != self.len() as u64 {
            return false;
        }
        let Ok(mut file) = std::fs::File::open(path) else {
            return false;
        };
        let mut theirs = vec![0u8; CHUNK];
        let mut at = 0;
        while at < self.len() {
            let chunk = self.chunk_at(at);
            if std::io::Read::read_exact(&mut file, &mut theirs[..chunk.len()]).is_err()
                || theirs[..chunk.len()] != *chunk
            {
                return false;
            }
            at += chunk.len();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pattern_is_the_same_as_its_bytes_spelled_out() {
        let size = 3 * CHUNK + 17;
        let spelled: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let pattern = Message::pattern(size);
        assert_eq!(pattern.len(), size);
        assert_eq!(pattern.digest(), wire::conversation::digest(&spelled));
        assert!(pattern == spelled[..]);
        let mut changed = spelled.clone();
        changed[2 * CHUNK + 5] ^= 1;
        assert_eq!(pattern.first_difference(&changed), Some(2 * CHUNK + 5));
        assert_eq!(pattern.first_difference(&spelled[..10]), Some(10));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.bin");
        pattern.write_to(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), spelled);
        assert!(pattern.is_in(&file));
        // A stale file of the same length but other bytes is not it.
        std::fs::write(&file, &changed).unwrap();
        assert!(!pattern.is_in(&file));
    }

    /// A gigabyte is described, not built: its end is read without the
    /// rest.
    #[test]
    fn a_gigabyte_pattern_is_described_not_built() {
        let message = Message::pattern(1 << 30);
        assert_eq!(message.len(), 1 << 30);
        assert_eq!(message.chunk_at((1 << 30) - 3).len(), 3);
        assert!(matches!(message.source, Source::Pattern { .. }));
    }
}
