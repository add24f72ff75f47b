//! Single sign-on routes: `/v1/oidc/{name}/start` sends the browser to the provider with a
//! fresh state, nonce and PKCE challenge (kept in a short signed cookie, so nothing is stored
//! for people who never come back); `/v1/oidc/{name}/callback` checks the state, exchanges the
//! code, validates the ID token ([`super::oidc`]) and maps its verified email to an operator's
//! account (provisioning an agent for an allowed domain when the provider says so), then starts
//! a session like a password sign-in.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::oidc::{self, Keys, Pkce, ProviderConfig};
use super::{audit, cookie, set_cookie, OidcSettings};
use crate::http::{Path, Query};
use crate::store::accounts::{Account, AccountRole};
use crate::{now_s, AppState};

/// The cookie that carries a sign-in in progress: provider, state, nonce, PKCE verifier, expiry
/// and a signature over them.
const FLOW_COOKIE: &str = "surechat_oidc";
/// How long a sign-in at the provider may take.
const FLOW_TTL_S: u64 = 600;

/// The configured providers, each with its keys' cache.
pub struct Providers {
    by_name: HashMap<String, (OidcSettings, ProviderConfig, Keys)>,
    client: Option<reqwest::Client>,
}

impl Providers {
    /// From the configuration (discovery happens at the first sign-in).
    pub fn new(config: &crate::Config) -> Providers {
        let by_name = config
            .oidc
            .iter()
            .map(|s| {
                let cfg = ProviderConfig::new(
                    s.name.clone(),
                    s.issuer.clone(),
                    s.client_id.clone(),
                    s.client_secret.clone(),
                );
                (
                    s.name.clone(),
                    (s.clone(), cfg, Keys::new(s.issuer.clone())),
                )
            })
            .collect();
        // The issuer is the operator's own choice, so no destination policy: an identity
        // provider on the private network is usual.
        let client = crate::webhooks::destination::client_for(
            config,
            true,
            concat!("surechat-oidc/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|err| tracing::error!(%err, "cannot build the single sign-on client"))
        .ok();
        Providers { by_name, client }
    }
}

/// The routes, merged into the HTTP API.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/oidc", get(list))
        .route("/v1/oidc/{name}/start", get(start))
        .route("/v1/oidc/{name}/callback", get(callback))
}

async fn list(State(app): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut providers: Vec<_> = app
        .sso
        .by_name
        .values()
        .map(|(s, _, _)| json!({"name": s.name, "label": s.label.clone().unwrap_or_else(|| s.name.clone())}))
        .collect();
    providers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Json(json!({ "providers": providers }))
}

fn redirect_uri(app: &AppState, name: &str) -> String {
    format!("{}/v1/oidc/{name}/callback", crate::reach::public_url(app))
}

/// Back to the sign-in page, saying why in the fragment.
fn back(why: &str) -> Response {
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("/web/console/sign-in.html#error={why}"),
        )],
    )
        .into_response()
}

async fn start(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let (Some((_, cfg, keys)), Some(client)) = (app.sso.by_name.get(&name), &app.sso.client) else {
        return back("failed");
    };
    let meta = match keys.metadata(client).await {
        Ok(meta) => meta,
        Err(err) => {
            tracing::warn!(provider = %name, %err, "single sign-on provider unusable");
            return back("failed");
        }
    };
    let state = oidc::random_token();
    let nonce = oidc::random_token();
    let pkce = Pkce::new();
    let expires = now_s() + FLOW_TTL_S;
    let flow = format!("{name}.{state}.{nonce}.{}.{expires}", pkce.verifier);
    let signed = format!("{flow}.{}", app.auth.sign("oidc-flow", &flow));
    let url = oidc::authorization_url(
        &meta,
        cfg,
        &redirect_uri(&app, &name),
        &state,
        &nonce,
        &pkce,
    );
    // Lax, not Strict: the provider sends the browser back with a cross-site navigation.
    let cookie = set_cookie(&app.config, FLOW_COOKIE, &signed, "Lax", FLOW_TTL_S);
    (
        StatusCode::FOUND,
        [(header::LOCATION, url), (header::SET_COOKIE, cookie)],
    )
        .into_response()
}

/// The flow cookie's fields, if well signed, unexpired and for this provider.
struct Flow {
    state: String,
    nonce: String,
    verifier: String,
}

fn flow(app: &AppState, parts: &Parts, name: &str) -> Option<Flow> {
    let value = cookie(parts, FLOW_COOKIE)?;
    let (flow, signature) = value.rsplit_once('.')?;
    if !app.auth.check_signature("oidc-flow", flow, signature) {
        return None;
    }
    let fields: Vec<&str> = flow.split('.').collect();
    let [provider, state, nonce, verifier, expires] = fields[..] else {
        return None;
    };
    let fresh = expires.parse::<u64>().ok()? > now_s();
    (provider == name && fresh).then(|| Flow {
        state: state.to_owned(),
        nonce: nonce.to_owned(),
        verifier: verifier.to_owned(),
    })
}

async fn callback(
    State(app): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query,
    request: axum::extract::Request,
) -> Response {
    let (parts, _) = request.into_parts();
    let cleared = set_cookie(&app.config, FLOW_COOKIE, "", "Lax", 0);
    let outcome = finish(&app, &name, &query, &parts).await;
    let mut response = match outcome {
        Ok(cookie) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, "/web/console/".to_owned()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response(),
        Err(why) => back(why),
    };
    response
        .headers_mut()
        .append(header::SET_COOKIE, cleared.parse().expect("a valid cookie"));
    response
}

/// The session cookie for a verified sign-in, or why there is none (`failed`, `no_account`,
/// `disabled`).
async fn finish(
    app: &AppState,
    name: &str,
    query: &HashMap<String, String>,
    parts: &Parts,
) -> Result<String, &'static str> {
    let (Some((settings, cfg, keys)), Some(client)) = (app.sso.by_name.get(name), &app.sso.client)
    else {
        return Err("failed");
    };
    let flow = flow(app, parts, name).ok_or("failed")?;
    if query.get("state") != Some(&flow.state) {
        return Err("failed");
    }
    let code = query.get("code").ok_or("failed")?;
    let meta = keys.metadata(client).await.map_err(|_| "failed")?;
    let claims = async {
        let id_token = oidc::exchange(
            client,
            &meta,
            cfg,
            code,
            &flow.verifier,
            &redirect_uri(app, name),
        )
        .await?;
        keys.validate(client, &id_token, cfg, &flow.nonce, now_s())
            .await
    }
    .await
    .map_err(|err| {
        tracing::warn!(provider = name, %err, "single sign-on refused");
        "failed"
    })?;
    let email = claims
        .email
        .filter(|_| claims.email_verified)
        .map(|e| e.trim().to_lowercase());
    let Some(email) = email else {
        audit(
            app,
            &format!("oidc:{name}:{}", claims.sub),
            "signin_failed",
            None,
            json!({"why": "no verified email"}),
        )
        .await;
        return Err("no_account");
    };
    // A provider with allowed domains speaks only for them, for existing accounts too: a
    // provider for the staff's domain cannot sign anyone in as an address of another.
    if !settings.allowed_domains.is_empty() && !domain_allowed(settings, &email) {
        audit(
            app,
            &email,
            "signin_failed",
            None,
            json!({"why": "domain not allowed", "via": name}),
        )
        .await;
        return Err("no_account");
    }
    let account = match app
        .store
        .account_by_email(email.clone())
        .await
        .map_err(|_| "failed")?
    {
        Some(account) => account,
        None => provision(app, settings, &email, claims.name.as_deref()).await?,
    };
    let active = app
        .store
        .operator(account.operator_id.clone())
        .await
        .map_err(|_| "failed")?
        .is_some_and(|o| o.active);
    if !active {
        audit(
            app,
            &email,
            "signin_failed",
            Some(&account.operator_id),
            json!({"why": "operator disabled", "via": name}),
        )
        .await;
        return Err("disabled");
    }
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (cookie, _) =
        super::routes::start_session(app, &account, &format!("oidc:{name}"), user_agent)
            .await
            .map_err(|_| "failed")?;
    Ok(cookie)
}

/// An agent account for a verified address of an allowed domain, when the provider may
/// provision; otherwise `no_account`.
async fn provision(
    app: &AppState,
    settings: &OidcSettings,
    email: &str,
    name: Option<&str>,
) -> Result<Account, &'static str> {
    if !settings.auto_provision || !domain_allowed(settings, email) {
        audit(
            app,
            email,
            "signin_failed",
            None,
            json!({"why": "no account", "via": settings.name}),
        )
        .await;
        return Err("no_account");
    }
    // The id comes from the address; one already taken (an operator of the directory, maybe
    // with another address that maps to the same id) is never reused: a suffix makes it new.
    let base: String = email
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let mut id = base.clone();
    for n in 2..=1000 {
        let taken = app
            .store
            .operator(id.clone())
            .await
            .map_err(|_| "failed")?
            .is_some()
            || app
                .store
                .account(id.clone())
                .await
                .map_err(|_| "failed")?
                .is_some();
        if !taken {
            break;
        }
        if n == 1000 {
            return Err("failed");
        }
        id = format!("{base}-{n}");
    }
    let body = super::admin::PutAccount {
        email: email.to_owned(),
        name: name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(email)
            .chars()
            .take(100)
            .collect(),
        role: AccountRole::Agent,
        active: Some(true),
        password: None,
        avatar_url: None,
    };
    super::admin::upsert(app, &format!("oidc:{}", settings.name), id.clone(), body)
        .await
        .map_err(|_| "failed")?;
    app.store.account(id).await.ok().flatten().ok_or("failed")
}

/// Whether `email`'s domain is one of the provider's allowed domains (exactly, any case).
fn domain_allowed(settings: &OidcSettings, email: &str) -> bool {
    let domain = email.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    settings.allowed_domains.iter().any(|d| {
        d.trim()
            .trim_start_matches('@')
            .eq_ignore_ascii_case(domain)
    })
}
