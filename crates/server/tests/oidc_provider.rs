//! `signin::oidc` against a real OpenID provider: `oidc-provider` (certified, and written by
//! others than this client) run by `tests/oidc/provider.mjs`. Discovery, the authorization URL,
//! the login and consent pages walked over HTTP as a browser would, the code exchange (a
//! confidential client with HTTP Basic and RS256, a public client with ES256), and the ID token
//! validated against the provider's JWKS; then the refusals on the provider's own tokens.
//!
//! Needs node and `npm ci` in `tests/oidc` (scripts/test runs it).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::Url;
use serde_json::json;
use server::signin::oidc::{self, IdClaims, Keys, OidcError, Pkce, ProviderConfig};

const REDIRECT_URI: &str = "http://127.0.0.1:9/v1/oidc/corp/callback";
const SECRET: &str = "test-secret-1";
/// How long the provider may take to start (node loading the package).
const START: Duration = Duration::from_secs(30);

/// The provider process; stopped on drop (and by itself when our end of its stdin closes, so
/// it does not outlive a killed test).
struct Provider {
    child: Child,
    _stdin: ChildStdin,
    issuer: String,
    stderr: Arc<Mutex<String>>,
}

impl Provider {
    /// Starts `node tests/oidc/provider.mjs` with a confidential client `surechat` (RS256) and a
    /// public client `surechat-public` (ES256).
    fn start() -> Provider {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
        if !dir.join("node_modules/oidc-provider").is_dir() {
            panic!(
                "{}/node_modules is missing: run `npm ci` there first (scripts/test does)",
                dir.display()
            );
        }
        let config = json!({
            "port": 0,
            "exitWithStdin": true,
            "clients": [
                {"clientId": "surechat", "clientSecret": SECRET, "redirectUris": [REDIRECT_URI]},
                {"clientId": "surechat-public", "redirectUris": [REDIRECT_URI], "idTokenAlg": "ES256"},
            ],
        });
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting node (is it installed?): {e}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr_pipe = child.stderr.take().expect("stderr is piped");

        // Kept for failure reports; drained so the provider never blocks on a full pipe.
        let stderr = Arc::new(Mutex::new(String::new()));
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr_pipe.read(&mut buf) {
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // The issuer comes on a `listening on` line, possibly after the provider's notices;
        // the rest of stdout is drained too.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(issuer) = line.strip_prefix("listening on ") {
                    let _ = tx.send(issuer.trim().to_string());
                }
            }
        });
        match rx.recv_timeout(START) {
            Ok(issuer) => Provider {
                child,
                _stdin: stdin,
                issuer,
                stderr,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the provider did not start within {START:?}; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        }
    }

    fn config(&self, client_id: &str, secret: Option<&str>) -> ProviderConfig {
        ProviderConfig::new("corp", &self.issuer, client_id, secret.map(str::to_string))
    }

    /// What the provider printed on stderr, for assertion messages.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    // reqwest is built without a TLS provider of its own; a client needs one even for HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One sign-in's secrets, and the URL the browser is sent to.
struct Start {
    state: String,
    nonce: String,
    pkce: Pkce,
    url: String,
}

fn start(meta: &oidc::Metadata, cfg: &ProviderConfig) -> Start {
    let (state, nonce, pkce) = (oidc::random_token(), oidc::random_token(), Pkce::new());
    let url = oidc::authorization_url(meta, cfg, REDIRECT_URI, &state, &nonce, &pkce);
    Start {
        state,
        nonce,
        pkce,
        url,
    }
}

/// Cookies by (path, name), as the provider scopes its interaction cookies to one path each.
#[derive(Default)]
struct Jar(Vec<(String, String, String)>);

impl Jar {
    fn store(&mut self, url: &Url, response: &reqwest::Response) {
        for header in response.headers().get_all(SET_COOKIE) {
            let line = header.to_str().unwrap_or_default();
            let mut parts = line.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let default_path = &url.path()[..url.path().rfind('/').unwrap_or(0)];
            let mut path = if default_path.is_empty() {
                "/"
            } else {
                default_path
            }
            .to_string();
            let mut expired = false;
            for attribute in parts {
                let (key, v) = attribute.split_once('=').unwrap_or((attribute, ""));
                match key.trim().to_ascii_lowercase().as_str() {
                    "path" if v.trim().starts_with('/') => path = v.trim().to_string(),
                    "max-age" => expired |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                    // The provider deletes with an expiry in 1970.
                    "expires" => expired |= v.contains("1970"),
                    _ => {}
                }
            }
            let (name, value) = (name.trim().to_string(), value.trim().to_string());
            self.0.retain(|(p, n, _)| !(p == &path && n == &name));
            if !expired {
                self.0.push((path, name, value));
            }
        }
    }

    fn header(&self, url: &Url) -> String {
        let under = |path: &str| {
            url.path() == path
                || url
                    .path()
                    .starts_with(&format!("{}/", path.trim_end_matches('/')))
        };
        let mut cookies: Vec<_> = self.0.iter().filter(|(p, _, _)| under(p)).collect();
        cookies.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.len()));
        cookies
            .iter()
            .map(|(_, n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// An attribute's value in a tag (`name="value"`), HTML entities undone.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(
        tag[start..end]
            .replace("&#x2F;", "/")
            .replace("&#39;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn form_encode(fields: &[(String, String)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The browser's part, as `signIn` of `tests/oidc/provider-lib.mjs` does it: follow redirects
/// carrying the provider's cookies, fill the login form with `login`, submit the consent form
/// as it is, and return the first Location outside the provider (the redirect URI).
async fn sign_in(client: &reqwest::Client, authorize_url: &str, login: &str) -> Url {
    let mut url = Url::parse(authorize_url).unwrap();
    let provider = url.origin();
    let mut jar = Jar::default();
    let mut post: Option<String> = None;
    for _ in 0..20 {
        let request = match post.take() {
            Some(body) => client
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None => client.get(url.clone()),
        };
        let response = request
            .header(COOKIE, jar.header(&url))
            .send()
            .await
            .unwrap();
        jar.store(&url, &response);
        if response.status().is_redirection() {
            let location = response.headers()[LOCATION].to_str().unwrap();
            let next = url.join(location).unwrap();
            if next.origin() != provider {
                return next;
            }
            url = next;
            continue;
        }
        let status = response.status();
        let html = response.text().await.unwrap();
        let form_start = html
            .find("<form")
            .unwrap_or_else(|| panic!("{url}: HTTP {status} without a form:\n{html}"));
        let form = &html[form_start..form_start + html[form_start..].find("</form>").unwrap()];
        let form_tag = &form[..form.find('>').unwrap()];
        let action = attribute(form_tag, "action").expect("the form has an action");
        let mut fields: Vec<(String, String)> = form
            .split("<input")
            .skip(1)
            .filter(|input| attribute(input, "type").as_deref() == Some("hidden"))
            .filter_map(|input| Some((attribute(input, "name")?, attribute(input, "value")?)))
            .collect();
        if fields.iter().any(|(k, v)| k == "prompt" && v == "login") {
            fields.push(("login".into(), login.into()));
            fields.push(("password".into(), "any password".into()));
        }
        url = url.join(&action).unwrap();
        post = Some(form_encode(&fields));
    }
    panic!("no redirect out of the provider after 20 steps");
}

/// Signs `login` in with `cfg` and returns the ID token and the sign-in's secrets.
async fn id_token_for(
    client: &reqwest::Client,
    meta: &oidc::Metadata,
    cfg: &ProviderConfig,
    login: &str,
) -> (String, Start) {
    let start = start(meta, cfg);
    let back = sign_in(client, &start.url, login).await;
    assert!(
        back.as_str().starts_with(REDIRECT_URI),
        "back at the redirect URI: {back}"
    );
    let query: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {back}"))
    };
    assert_eq!(param("state"), start.state);
    let code = param("code");
    let id_token = oidc::exchange(client, meta, cfg, &code, &start.pkce.verifier, REDIRECT_URI)
        .await
        .unwrap_or_else(|e| panic!("exchanging the code: {e}"));
    (id_token, start)
}

#[tokio::test]
async fn confidential_and_public_clients_sign_in_with_pkce() {
    let provider = Provider::start();
    let client = client();
    let meta = oidc::discover(&client, &provider.issuer)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", provider.log()));
    assert_eq!(meta.issuer, provider.issuer);
    let keys = Keys::new(&provider.issuer);

    for (cfg, alg) in [
        (provider.config("surechat", Some(SECRET)), "RS256"),
        (provider.config("surechat-public", None), "ES256"),
    ] {
        let (id_token, start) = id_token_for(&client, &meta, &cfg, "agent").await;
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(id_token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg, "{}", cfg.client_id);
        let claims = keys
            .validate(&client, &id_token, &cfg, &start.nonce, now_s())
            .await;
        assert_eq!(
            claims,
            Ok(IdClaims {
                sub: "agent".into(),
                email: Some("agent@corp.example".into()),
                email_verified: true,
                name: Some("Ada Agent".into()),
            }),
            "{}",
            cfg.client_id
        );
    }

    // Accounts as the provider describes them: an unverified email, and none at all.
    let cfg = provider.config("surechat", Some(SECRET));
    let (id_token, start) = id_token_for(&client, &meta, &cfg, "unverified").await;
    let claims = keys
        .validate(&client, &id_token, &cfg, &start.nonce, now_s())
        .await
        .unwrap();
    assert_eq!(claims.email.as_deref(), Some("unverified@corp.example"));
    assert!(!claims.email_verified);
    let (id_token, start) = id_token_for(&client, &meta, &cfg, "someone-else").await;
    let claims = keys
        .validate(&client, &id_token, &cfg, &start.nonce, now_s())
        .await
        .unwrap();
    assert_eq!((claims.sub.as_str(), claims.email), ("someone-else", None));
}

#[tokio::test]
async fn the_providers_tokens_are_refused_when_they_are_not_ours() {
    let provider = Provider::start();
    let client = client();
    let meta = oidc::discover(&client, &provider.issuer).await.unwrap();
    let cfg = provider.config("surechat", Some(SECRET));
    let keys = Keys::new(&provider.issuer);
    let (id_token, start) = id_token_for(&client, &meta, &cfg, "outsider").await;
    let refused = |reason| Err(OidcError::InvalidToken(reason));

    // Issued to `surechat`: another client must not take it.
    let other = provider.config("another-client", Some(SECRET));
    assert_eq!(
        keys.validate(&client, &id_token, &other, &start.nonce, now_s())
            .await,
        refused("audience")
    );

    // One byte of the signature flipped.
    let (signed, signature) = id_token.rsplit_once('.').unwrap();
    let mut signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    signature[0] ^= 0x80;
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature));
    assert_eq!(
        keys.validate(&client, &tampered, &cfg, &start.nonce, now_s())
            .await,
        refused("signature")
    );

    // Replayed into another sign-in (another nonce), or presented after it expired (an hour).
    assert_eq!(
        keys.validate(&client, &id_token, &cfg, &oidc::random_token(), now_s())
            .await,
        refused("nonce")
    );
    assert_eq!(
        keys.validate(&client, &id_token, &cfg, &start.nonce, now_s() + 7200)
            .await,
        refused("expired")
    );

    // Untouched, it passes: the refusals above were for the reasons named.
    assert!(keys
        .validate(&client, &id_token, &cfg, &start.nonce, now_s())
        .await
        .is_ok());

    // A trailing slash makes another issuer: discovery says so rather than trusting it.
    let err = oidc::discover(&client, &format!("{}/", provider.issuer))
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::Discovery(_)), "{err}");
}

#[tokio::test]
async fn the_token_endpoint_refuses_a_reused_code_and_a_wrong_verifier() {
    let provider = Provider::start();
    let client = client();
    let meta = oidc::discover(&client, &provider.issuer).await.unwrap();
    let cfg = provider.config("surechat", Some(SECRET));
    let code_of = |back: Url| {
        back.query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no code in {back}"))
    };

    // A verifier other than the one the challenge was made from.
    let start = start(&meta, &cfg);
    let code = code_of(sign_in(&client, &start.url, "agent").await);
    let wrong = Pkce::new().verifier;
    let err = oidc::exchange(&client, &meta, &cfg, &code, &wrong, REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OidcError::Token(m) if m.contains("invalid_grant")),
        "{err}"
    );

    // A code is good once.
    let start = self::start(&meta, &cfg);
    let code = code_of(sign_in(&client, &start.url, "agent").await);
    let verifier = &start.pkce.verifier;
    oidc::exchange(&client, &meta, &cfg, &code, verifier, REDIRECT_URI)
        .await
        .unwrap();
    let err = oidc::exchange(&client, &meta, &cfg, &code, verifier, REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(matches!(&err, OidcError::Token(_)), "{err}");

    // A wrong secret.
    let start = self::start(&meta, &cfg);
    let code = code_of(sign_in(&client, &start.url, "agent").await);
    let bad = provider.config("surechat", Some("not-the-secret"));
    let err = oidc::exchange(
        &client,
        &meta,
        &bad,
        &code,
        &start.pkce.verifier,
        REDIRECT_URI,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, OidcError::Token(m) if m.contains("invalid_client")),
        "{err}"
    );
}
