//! Deciding a finished upload: its type from its content (never its name or declared type),
//! metadata removed from images, a thumbnail made, the stored bytes hashed.

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::store::uploads::{Content, Decision, Upload};
use crate::store::StoreError;
use crate::AppState;

/// Images decoded at once: decoding a large photo takes tens of megabytes and a core for a
/// while, so a burst of uploads queues here instead of exhausting the machine.
static DECODING: Semaphore = Semaphore::const_new(2);

/// What the content is, as `attachment_types` sees it.
pub fn allowed_type(config: &crate::config::Config, bytes: &[u8]) -> Option<&'static str> {
    media::sniff(bytes).filter(|found| config.attachment_types.iter().any(|t| t == found))
}

/// Decides `upload` (every byte stored) and stores the decision; answers the upload after.
/// Deciding twice is harmless: the store keeps the first decision.
pub async fn decide(app: &AppState, upload: Upload) -> Result<Upload, StoreError> {
    let bytes = app.store.upload_content(upload.id.clone()).await?;
    if (bytes.len() as u64) < upload.length {
        return Err(StoreError::Unavailable(format!(
            "upload {} holds {} of {} bytes",
            upload.id,
            bytes.len(),
            upload.length
        )));
    }
    let decision = match allowed_type(&app.config, &bytes) {
        None => Decision::Refused,
        Some(content_type) => {
            let strip = app.config.attachment_strip_metadata;
            let _permit = DECODING
                .acquire()
                .await
                .map_err(|_| StoreError::Unavailable("decoder closed".into()))?;
            tokio::task::spawn_blocking(move || examine(content_type, bytes, strip))
                .await
                .map_err(|err| StoreError::Unavailable(format!("decoding failed: {err}")))?
        }
    };
    let refused = matches!(decision, Decision::Refused);
    let decided = app.store.decide_upload(upload.id.clone(), decision).await?;
    app.metrics.upload_decided(!refused);
    Ok(decided)
}

/// Examines content of an allowed type: an image that does not decode is refused (its bytes
/// claim a type they are not, a classic disguise).
fn examine(content_type: &'static str, bytes: Vec<u8>, strip: bool) -> Decision {
    match media::process(content_type, &bytes, strip) {
        Ok(processed) => {
            let stored = processed.replaced.as_deref().unwrap_or(&bytes);
            let content = Content {
                content_type: content_type.to_owned(),
                size: stored.len() as u64,
                sha256: hex(&Sha256::digest(stored)),
                width: processed.width,
                height: processed.height,
                thumb: processed.thumb.is_some(),
            };
            Decision::Complete {
                content,
                replaced: processed.replaced,
                thumb: processed.thumb,
            }
        }
        Err(err) => {
            tracing::info!(%err, content_type, "refused an upload whose content does not decode");
            Decision::Refused
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
