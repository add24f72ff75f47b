//! The HTTP side of reaching people: the VAPID key and push subscriptions (a user's own), the
//! links in emails and pushes (used once, for a fresh client session), and the unsubscribe
//! link (a page for people, and RFC 8058 one-click for mail clients).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use protocol::api::{
    LinkSession, PushKey, PushSubscriptionBody, PushSubscriptionList, PushSubscriptionView,
    RedeemLink,
};
use protocol::{ErrorCode, Role};
use sha2::{Digest, Sha256};

use super::{links, webpush};
use crate::error::ApiError;
use crate::http::{Body, Path, Query, User};
use crate::store::reach::{PushSubscription, Redeemed};
use crate::{now_ms, now_s, AppState};

/// The routes, merged into the HTTP API.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/push/key", get(push_key))
        .route("/v1/push/subscriptions", post(subscribe).get(subscriptions))
        .route("/v1/push/subscriptions/{id}", delete(unsubscribe_push))
        .route("/v1/links/redeem", post(redeem))
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe))
}

/// `GET /v1/push/key`: public, so a page can subscribe before anything else.
async fn push_key(State(app): State<Arc<AppState>>) -> Json<PushKey> {
    Json(PushKey {
        public_key: app.reach.vapid.public_key(),
    })
}

fn view(s: PushSubscription) -> PushSubscriptionView {
    PushSubscriptionView {
        id: s.id,
        endpoint: s.endpoint,
        created_at: s.created_at,
    }
}

/// The id of an endpoint: the same endpoint registered again is the same subscription.
fn subscription_id(endpoint: &str) -> String {
    Sha256::digest(endpoint.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `POST /v1/push/subscriptions` (user): 201 for a new subscription, 200 for a known endpoint.
async fn subscribe(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Body(body): Body<PushSubscriptionBody>,
) -> Result<Response, ApiError> {
    let invalid = |why: String| ApiError::new(ErrorCode::InvalidSubscription, why);
    let url = crate::webhooks::destination::parse_url(&body.endpoint).map_err(invalid)?;
    if !app.config.push_allow_private {
        if url.scheme() != "https" {
            return Err(invalid("push endpoints must be https:// URLs".into()));
        }
        crate::webhooks::destination::check_literal(&url)
            .map_err(|refused| invalid(refused.to_string()))?;
    }
    let subscription = webpush::Subscription {
        endpoint: body.endpoint.clone(),
        p256dh: body.keys.p256dh.clone(),
        auth: body.keys.auth.clone(),
    };
    subscription
        .check()
        .map_err(|err| invalid(err.to_string()))?;
    let (stored, created) = app
        .store
        .put_push_subscription(PushSubscription {
            id: subscription_id(&body.endpoint),
            user_id: claims.sub,
            endpoint: body.endpoint,
            p256dh: body.keys.p256dh,
            auth: body.keys.auth,
            created_at: now_ms(),
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(stored))).into_response())
}

/// `GET /v1/push/subscriptions` (user): the caller's own.
async fn subscriptions(
    State(app): State<Arc<AppState>>,
    User(claims): User,
) -> Result<Json<PushSubscriptionList>, ApiError> {
    let all = app.store.push_subscriptions(claims.sub).await?;
    Ok(Json(PushSubscriptionList {
        subscriptions: all.into_iter().map(view).collect(),
    }))
}

/// `DELETE /v1/push/subscriptions/{id}` (user): only the caller's own.
async fn unsubscribe_push(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id.len() != 24 || !id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a subscription id is 24 lowercase hex digits",
        ));
    }
    if app
        .store
        .delete_push_subscription(Some(claims.sub), id)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such subscription"))
    }
}

/// `POST /v1/links/redeem` (no credentials: the link is the credential): a client token for the
/// link's conversation; the link works once. POST, not GET, so a mail scanner that fetches every
/// link in an email does not use it up: the page the link opens posts it.
async fn redeem(
    State(app): State<Arc<AppState>>,
    Body(body): Body<RedeemLink>,
) -> Result<Json<LinkSession>, ApiError> {
    let id = links::link_id(&app.auth, &body.token)
        .ok_or_else(|| ApiError::new(ErrorCode::TokenInvalid, "this link is not valid"))?;
    let link = match app.store.redeem_link(id, now_ms()).await? {
        Redeemed::Opened(link) => link,
        Redeemed::Used => {
            return Err(ApiError::new(
                ErrorCode::LinkUsed,
                "this link was used already; open the conversation from a newer email",
            ))
        }
        Redeemed::Expired => {
            return Err(ApiError::new(
                ErrorCode::LinkExpired,
                "this link has expired",
            ))
        }
        Redeemed::Unknown => {
            return Err(ApiError::new(
                ErrorCode::TokenInvalid,
                "this link is not valid",
            ))
        }
    };
    // As `POST /v1/tokens` does: a token minted right after a revocation is not under it.
    let revoked = app.store.tokens_revoked_at(link.user_id.clone()).await?;
    let now = revoked.map_or(now_s(), |at| now_s().max(at.saturating_add(1)));
    let ttl = super::LINK_SESSION_TTL_S;
    Ok(Json(LinkSession {
        token: app.auth.mint(&link.user_id, Role::Client, now, ttl),
        expires_at: now + ttl,
        user_id: link.user_id,
        conversation_id: link.conversation_id,
    }))
}

/// A small page for people (the unsubscribe link is opened in a browser).
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title><main style=\"font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem\"><h1 style=\"font-size:1.4rem\">{title}</h1>{body}</main></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn bad_link() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "This link is not valid",
        "<p>Copy the whole link from the email, or contact us to stop the emails.</p>",
    )
}

/// `GET /unsubscribe?token=…`: asks before unsubscribing (a GET must not change anything:
/// mail scanners open links).
async fn unsubscribe_page(State(app): State<Arc<AppState>>, Query(query): Query) -> Response {
    let Some(token) = query.get("token") else {
        return bad_link();
    };
    if links::unsubscribe_user(&app.auth, token).is_none() {
        return bad_link();
    }
    // The token is base64url and '.', so it needs no escaping in the attribute.
    page(
        StatusCode::OK,
        "Stop emails about your conversations?",
        &format!(
            "<p>You will no longer get an email when we answer and you have not read it.</p><form method=\"post\" action=\"?token={token}\"><button type=\"submit\" style=\"font:inherit;padding:.5rem 1rem\">Stop emails</button></form>"
        ),
    )
}

/// `POST /unsubscribe?token=…`: the page's button, and RFC 8058 one-click from mail clients
/// (body `List-Unsubscribe=One-Click`, which needs nothing more).
async fn unsubscribe(State(app): State<Arc<AppState>>, Query(query): Query) -> Response {
    let Some(user) = query
        .get("token")
        .and_then(|token| links::unsubscribe_user(&app.auth, token))
    else {
        return bad_link();
    };
    match app.store.unsubscribe(user, now_ms()).await {
        Ok(_) => page(
            StatusCode::OK,
            "You will get no more emails",
            "<p>You can still open your conversations from the booking's page.</p>",
        ),
        Err(_) => page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Please try again",
            "<p>We could not record this just now. Please try again in a minute.</p>",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscription_ids_are_stable_per_endpoint() {
        let a = subscription_id("https://push.example/a");
        assert_eq!(a, subscription_id("https://push.example/a"));
        assert_ne!(a, subscription_id("https://push.example/b"));
        assert_eq!(a.len(), 24);
    }
}
