//! Attachments over HTTP: resumable uploads (`/v1/uploads/{id}`, the core of tus 1.0 with
//! creation by the device's id) and downloads (`/v1/attachments/{id}`), as `docs/protocol.md`
//! §14 describes. The rules are the store's ([`crate::store::uploads`]); this module checks
//! input, limits and who asks, decides a finished upload's type ([`decide`]) and serves files
//! safely ([`serve`]).

pub mod decide;
pub mod links;
pub mod serve;
mod uploads;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;

use crate::AppState;

/// The routes of uploads and downloads.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/v1/uploads/{id}",
            axum::routing::put(uploads::create)
                .head(uploads::head)
                .get(uploads::get)
                .patch(uploads::patch)
                .delete(uploads::delete),
        )
        .route("/v1/attachments/{id}", get(serve::file))
        .route("/v1/attachments/{id}/thumb", get(serve::thumb))
        .route("/v1/attachments/{id}/link", get(serve::link))
}

/// Removes uploads no message names once they are `upload_ttl_s` old, every minute, until
/// shutdown. Every node may run it: removal is one statement that skips named uploads.
pub async fn collect(app: Arc<AppState>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = app.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let before = crate::now_ms().saturating_sub(app.config.upload_ttl_s * 1000);
        match app.store.expire_uploads(before).await {
            Ok(0) => {}
            Ok(removed) => {
                app.metrics
                    .uploads_expired
                    .fetch_add(removed, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(removed, "removed uploads no message named");
            }
            Err(err) => tracing::warn!(%err, "cannot remove old uploads; trying again later"),
        }
    }
}
