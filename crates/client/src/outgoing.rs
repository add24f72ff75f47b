//! Files an app sends with a message ([`OutgoingFile`]), and what is checked before they enter
//! the outbox: what the server would refuse for certain is refused here, with the reason, before
//! any byte is stored or sent.

use std::path::Path;

use protocol::limits::{ATTACHMENTS_MAX, UPLOAD_NAME_BYTES_MAX};

/// A file to send with a message ([`crate::Client::send_with_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingFile {
    /// The file's name as the user knows it: 1–255 bytes, no control characters. Only ever
    /// shown; the server decides the type from the content.
    pub name: String,
    /// The type the device believes (e.g. `image/jpeg`); informational.
    pub content_type: Option<String>,
    /// The whole file (at least one byte).
    pub bytes: Vec<u8>,
}

impl OutgoingFile {
    /// A file named `name` with these bytes, its type guessed from the name's extension.
    pub fn new(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        OutgoingFile {
            content_type: guess_type(&name).map(str::to_owned),
            name,
            bytes: bytes.into(),
        }
    }

    /// Reads the file at `path`; its name is the path's last component.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        Ok(OutgoingFile::new(name, bytes))
    }
}

/// The type the server allows by default whose usual extension `name` has, if any (the server
/// checks the content either way).
fn guess_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

/// Why a message's files cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// More files than one message carries.
    #[error("{count} files; a message carries at most {ATTACHMENTS_MAX}")]
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// A file has no bytes.
    #[error("file {index} (`{name}`) is empty")]
    Empty {
        /// Its position among the message's files.
        index: usize,
        /// Its name.
        name: String,
    },
    /// A file's name is empty, longer than 255 bytes or has control characters.
    #[error(
        "file {index}: a name is 1 to {UPLOAD_NAME_BYTES_MAX} bytes without control characters"
    )]
    BadName {
        /// Its position among the message's files.
        index: usize,
    },
    /// The declared type is longer than the server takes (255 bytes).
    #[error("file {index}: a declared type is at most 255 bytes")]
    BadType {
        /// Its position among the message's files.
        index: usize,
    },
}

/// Checks a message's files against what the server refuses for certain.
pub(crate) fn check(files: &[OutgoingFile]) -> Result<(), FileError> {
    if files.len() > ATTACHMENTS_MAX {
        return Err(FileError::TooMany { count: files.len() });
    }
    for (index, file) in files.iter().enumerate() {
        let name = &file.name;
        if name.is_empty()
            || name.len() > UPLOAD_NAME_BYTES_MAX
            || name.chars().any(char::is_control)
        {
            return Err(FileError::BadName { index });
        }
        if file.bytes.is_empty() {
            return Err(FileError::Empty {
                index,
                name: name.clone(),
            });
        }
        if file.content_type.as_ref().is_some_and(|t| t.len() > 255) {
            return Err(FileError::BadType { index });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_the_server_would_refuse_are_refused_before_the_outbox() {
        let ok = OutgoingFile::new("Scan.PDF", vec![1]);
        assert_eq!(ok.content_type.as_deref(), Some("application/pdf"));
        assert_eq!(OutgoingFile::new("notes.txt", vec![1]).content_type, None);
        assert_eq!(check(std::slice::from_ref(&ok)), Ok(()));
        assert_eq!(
            check(&vec![ok.clone(); ATTACHMENTS_MAX + 1]),
            Err(FileError::TooMany { count: 11 })
        );
        assert_eq!(
            check(&[ok.clone(), OutgoingFile::new("a.png", Vec::new())]),
            Err(FileError::Empty {
                index: 1,
                name: "a.png".into()
            })
        );
        for name in ["", "a\nb.png", &"x".repeat(256)] {
            assert_eq!(
                check(&[OutgoingFile::new(name, vec![1])]),
                Err(FileError::BadName { index: 0 })
            );
        }
        let mut typed = ok;
        typed.content_type = Some("t".repeat(256));
        assert_eq!(check(&[typed]), Err(FileError::BadType { index: 0 }));
    }
}
