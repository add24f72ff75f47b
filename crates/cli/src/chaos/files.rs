//! The files a chaos run sends: some messages carry one or two small PDFs (the server tells
//! types by content, and leaves PDFs byte for byte as sent), drawn from the seed, so a run's
//! files are the same each time it is repeated.

use client::OutgoingFile;
use sha2::{Digest, Sha256};

use super::schedule::Rng;

/// One message in this many carries files.
const MESSAGES_PER_FILE_MESSAGE: u64 = 8;

/// What the checker holds an attachment to: what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    pub name: String,
    pub size: u64,
    /// Hex SHA-256 of the bytes sent.
    pub sha256: String,
}

/// Hex SHA-256.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The files of message `n` of device `device` in the run of `seed`: none for most messages;
/// otherwise one or two PDFs, mostly a few KiB, sometimes a few hundred (so uploads take many
/// chunks and meet the faults).
pub fn files_for(seed: u64, device: usize, n: u64) -> Vec<OutgoingFile> {
    let mut rng = Rng::new(seed ^ 0x6669_6c65_7300_0000 ^ ((device as u64) << 40) ^ n);
    if rng.range(0, MESSAGES_PER_FILE_MESSAGE) != 0 {
        return Vec::new();
    }
    let count = if rng.range(0, 4) == 0 { 2 } else { 1 };
    (0..count)
        .map(|k| {
            let len = if rng.range(0, 8) == 0 {
                rng.range(100 * 1024, 300 * 1024)
            } else {
                rng.range(1024, 40 * 1024)
            } as usize;
            let mut bytes = b"%PDF-1.7\n".to_vec();
            while bytes.len() < len {
                bytes.extend_from_slice(&rng.next().to_le_bytes());
            }
            bytes.truncate(len);
            OutgoingFile::new(format!("d{device}-m{n}-{k}.pdf"), bytes)
        })
        .collect()
}

/// What the checker keeps of files sent.
pub fn described(files: &[OutgoingFile]) -> Vec<SentFile> {
    files
        .iter()
        .map(|file| SentFile {
            name: file.name.clone(),
            size: file.bytes.len() as u64,
            sha256: sha256(&file.bytes),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_files_and_some_messages_carry_them() {
        let all: Vec<Vec<OutgoingFile>> = (1..=400).map(|n| files_for(7, 3, n)).collect();
        assert_eq!(
            all,
            (1..=400).map(|n| files_for(7, 3, n)).collect::<Vec<_>>()
        );
        let with = all.iter().filter(|f| !f.is_empty()).count();
        assert!((25..=80).contains(&with), "about one in eight: {with}");
        assert!(all.iter().any(|f| f.len() == 2));
        for file in all.iter().flatten() {
            assert!(file.bytes.starts_with(b"%PDF-"));
            assert_eq!(file.content_type.as_deref(), Some("application/pdf"));
        }
        let other: Vec<Vec<OutgoingFile>> = (1..=400).map(|n| files_for(8, 3, n)).collect();
        assert_ne!(all, other, "another seed, other files");
    }
}
