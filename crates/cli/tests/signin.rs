//! Operators' sign-in as a process: the first admin made with `surechat operator add`, sessions
//! in a cookie with the right attributes, CSRF refused, lockout after the documented count,
//! Argon2id PHC strings in storage, no password or hash in the logs even at trace level, the
//! audit log, and disabling an operator ending their sessions.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use testkit::{Http, HttpResponse, Served};

const ADMIN: &str = "signin-test-admin-key-0123456789";
const SECRET: &str = "signin-test-jwt-secret-0123456789abcdef01234";
const PASSWORD: &str = "correct horse battery staple";

fn surechat() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_surechat"));
    command
        .env("SURECHAT_ADMIN_KEY", ADMIN)
        .env("SURECHAT_JWT_SECRET", SECRET);
    command
}

/// `surechat operator add` with a password on standard input.
fn add_operator(data: &Path, id: &str, email: &str, role: &str, password: &str) {
    let mut child = surechat()
        .args([
            "operator",
            "add",
            id,
            "--name",
            id,
            "--email",
            email,
            "--role",
            role,
            "--password-stdin",
            "--data",
        ])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("sign-in as {}", email.to_lowercase())),
        "{printed}"
    );
}

/// `surechat serve` on `data` with stderr to a file, logging at trace level.
fn serve(data: &Path, log: &Path, env: &[(&str, &str)]) -> Served {
    Served::spawn(
        surechat()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "trace")
            .env("SURECHAT_SIGNIN_LOCK_AFTER", "3")
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(log).unwrap()),
    )
}

async fn sign_in(http: &Http, email: &str, password: &str) -> HttpResponse {
    http.json(
        "POST",
        "/v1/session",
        None,
        &json!({"email": email, "password": password}),
    )
    .await
}

/// The session cookie's `name=value` from a sign-in answer.
fn cookie(response: &HttpResponse) -> String {
    let set = response.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_signs_in_with_a_cookie_and_csrf_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_operator(&data, "ada", "Ada@Example.com", "admin", PASSWORD);
    let log = dir.path().join("server.log");
    let served = serve(&data, &log, &[]);
    let http = served.http();

    // Another site's form can post text/plain that parses as JSON: refused, so no one is
    // signed in to an account they did not choose.
    let form = json!({"email": "ada@example.com", "password": PASSWORD}).to_string();
    let forged = http
        .with_headers(
            "POST",
            "/v1/session",
            &[("Content-Type", "text/plain")],
            Some(&form),
        )
        .await;
    assert_eq!(forged.status, 400);
    assert!(forged.header("set-cookie").is_none());
    let signed = sign_in(&http, "ada@example.com", PASSWORD).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let set = signed.header("set-cookie").unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(
            set.split("; ").any(|a| a == attribute),
            "{attribute} missing from {set}"
        );
    }
    let session: Value = signed.json();
    assert_eq!(session["role"], "admin");
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();
    let cookie = cookie(&signed);

    // A state-changing call with the cookie but without the CSRF token is refused, and does
    // nothing; with it, it works.
    let body = json!({"email": "bo@example.com", "name": "Bo", "role": "agent", "password": "a long enough passphrase"});
    let refused = http
        .with_headers(
            "PUT",
            "/v1/accounts/bo",
            &[("Cookie", &cookie)],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(
        (refused.status, refused.problem_code().as_str()),
        (403, "csrf_failed")
    );
    let wrong = http
        .with_headers(
            "PUT",
            "/v1/accounts/bo",
            &[("Cookie", &cookie), ("X-CSRF-Token", "guess")],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(wrong.status, 403);
    let list = http
        .with_headers("GET", "/v1/accounts", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(
        list.json()["accounts"].as_array().unwrap().len(),
        1,
        "nothing was added"
    );
    let added = http
        .with_headers(
            "PUT",
            "/v1/accounts/bo",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);

    // The console's token comes from the session (CSRF-checked too) and works as an operator's.
    let token = http
        .with_headers(
            "POST",
            "/v1/session/token",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            None,
        )
        .await;
    assert_eq!(token.status, 200, "{}", token.body);
    let jwt = token.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(http.get("/v1/inbox?view=all", Some(&jwt)).await.status, 200);
    let no_csrf = http
        .with_headers("POST", "/v1/session/token", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(no_csrf.status, 403);

    // An agent's session is not an admin's.
    let bo = sign_in(&http, "bo@example.com", "a long enough passphrase").await;
    assert_eq!(bo.status, 200);
    let bo_csrf = bo.json()["csrf_token"].as_str().unwrap().to_owned();
    let forbidden = http
        .with_headers(
            "GET",
            "/v1/accounts",
            &[("Cookie", &cookie_of(&bo)), ("X-CSRF-Token", &bo_csrf)],
            None,
        )
        .await;
    assert_eq!(forbidden.status, 403);

    // Signing out ends the session.
    let out = http
        .with_headers(
            "DELETE",
            "/v1/session",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            None,
        )
        .await;
    assert_eq!(out.status, 204);
    let after = http
        .with_headers("GET", "/v1/session", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(after.status, 401);

    // Storage holds Argon2id PHC strings; the log holds no password and no hash.
    drop(served);
    let db = rusqlite::Connection::open(data.join("surechat.db")).unwrap();
    let hashes: Vec<String> = db
        .prepare("SELECT password_hash FROM accounts ORDER BY operator_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hashes.len(), 2);
    for hash in &hashes {
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    }
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("/v1/session"),
        "the trace log records requests"
    );
    for secret in [
        PASSWORD,
        "a long enough passphrase",
        hashes[0].as_str(),
        hashes[1].as_str(),
        &csrf,
    ] {
        assert!(!logged.contains(secret), "the log holds a secret: {secret}");
    }
}

fn cookie_of(response: &HttpResponse) -> String {
    cookie(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_lock_the_account_and_the_audit_log_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_operator(&data, "ada", "ada@example.com", "admin", PASSWORD);
    add_operator(
        &data,
        "bo",
        "bo@example.com",
        "agent",
        "a long enough passphrase",
    );
    let served = serve(&data, &dir.path().join("server.log"), &[]);
    let http = served.http();
    // An unknown address and a wrong password get the same answer.
    let unknown = sign_in(&http, "nobody@example.com", "whatever it is").await;
    assert_eq!(
        (unknown.status, unknown.problem_code().as_str()),
        (401, "signin_failed")
    );
    for _ in 0..2 {
        let wrong = sign_in(&http, "bo@example.com", "not the password").await;
        assert_eq!(
            (wrong.status, wrong.problem_code().as_str()),
            (401, "signin_failed")
        );
    }
    // The third failure (SURECHAT_SIGNIN_LOCK_AFTER=3) locks: even the right password is refused.
    let third = sign_in(&http, "bo@example.com", "not the password").await;
    assert_eq!(
        (third.status, third.problem_code().as_str()),
        (429, "account_locked")
    );
    assert!(third.header("retry-after").unwrap().parse::<u64>().unwrap() > 0);
    let right = sign_in(&http, "bo@example.com", "a long enough passphrase").await;
    assert_eq!(
        (right.status, right.problem_code().as_str()),
        (429, "account_locked")
    );

    let audit = http.get("/v1/audit", Some(ADMIN)).await;
    assert_eq!(audit.status, 200, "{}", audit.body);
    let entries = audit.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(actions.contains(&("account_created", "cli")), "{actions:?}");
    assert!(
        actions.contains(&("signin_failed", "nobody@example.com")),
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.0 == "signin_failed" && a.1 == "bo@example.com")
            .count(),
        3
    );
    assert!(actions.contains(&("locked", "system")), "{actions:?}");
    assert!(!audit.body.contains("not the password") && !audit.body.contains("$argon2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_an_operator_ends_their_sessions_and_connections() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_operator(
        &data,
        "bo",
        "bo@example.com",
        "agent",
        "a long enough passphrase",
    );
    let served = serve(&data, &dir.path().join("server.log"), &[]);
    let http = served.http();
    let bo = sign_in(&http, "bo@example.com", "a long enough passphrase").await;
    let cookie = cookie(&bo);
    let csrf = bo.json()["csrf_token"].as_str().unwrap().to_owned();
    let token = http
        .with_headers(
            "POST",
            "/v1/session/token",
            &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
            None,
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut device = testkit::Device::connect(&served.ws(), &token, vec![]).await;
    let disabled = http
        .json(
            "PUT",
            "/v1/accounts/bo",
            Some(ADMIN),
            &json!({"email": "bo@example.com", "name": "Bo", "role": "agent", "active": false}),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(device.closed().await.map(|(code, _)| code), Some(4401));
    let gone = http
        .with_headers("GET", "/v1/session", &[("Cookie", &cookie)], None)
        .await;
    assert_eq!(gone.status, 401);
    let again = sign_in(&http, "bo@example.com", "a long enough passphrase").await;
    assert_eq!(again.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_password_is_reset_once_through_the_emailed_link() {
    let sink = testkit::smtp::Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_operator(
        &data,
        "bo",
        "bo@example.com",
        "agent",
        "a long enough passphrase",
    );
    let port = sink.port().to_string();
    let served = serve(
        &data,
        &dir.path().join("server.log"),
        &[
            ("SURECHAT_SMTP_HOST", "127.0.0.1"),
            ("SURECHAT_SMTP_PORT", &port),
            ("SURECHAT_SMTP_SECURITY", "none"),
            ("SURECHAT_EMAIL_FROM", "console@hotel.example"),
        ],
    );
    let http = served.http();
    // Asking says the same for an unknown address; only the known one gets an email.
    for email in ["nobody@example.com", "bo@example.com"] {
        let asked = http
            .json("POST", "/v1/password-reset", None, &json!({"email": email}))
            .await;
        assert_eq!(asked.status, 202);
    }
    let got = tokio::task::block_in_place(|| sink.wait_for(1, std::time::Duration::from_secs(30)));
    assert_eq!(got[0].to, ["bo@example.com"]);
    let start = got[0].text.find("#token=").expect("a reset link") + "#token=".len();
    let token: String = got[0].text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    // A weak password is refused and does not use the link up.
    let weak = http
        .json(
            "POST",
            "/v1/password-reset/complete",
            None,
            &json!({"token": token, "password": "short"}),
        )
        .await;
    assert_eq!(
        (weak.status, weak.problem_code().as_str()),
        (400, "weak_password")
    );
    let done = http
        .json(
            "POST",
            "/v1/password-reset/complete",
            None,
            &json!({"token": token, "password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(done.status, 204, "{}", done.body);
    let again = http
        .json(
            "POST",
            "/v1/password-reset/complete",
            None,
            &json!({"token": token, "password": "yet another passphrase"}),
        )
        .await;
    assert_eq!(
        (again.status, again.problem_code().as_str()),
        (410, "link_expired")
    );
    assert_eq!(
        sign_in(&http, "bo@example.com", "a long enough passphrase")
            .await
            .status,
        401
    );
    assert_eq!(
        sign_in(&http, "bo@example.com", "a brand new passphrase")
            .await
            .status,
        200
    );
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing was sent for the unknown address"
    );
}

#[test]
fn the_command_line_lists_resets_and_disables_operators() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_operator(&data, "ada", "ada@example.com", "admin", PASSWORD);
    let run = |args: &[&str]| {
        let out = surechat()
            .args(args)
            .arg("--data")
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run(&["operator", "list"]),
        "ada\tactive\tada\t\tada@example.com\tadmin\n"
    );
    let link = run(&["operator", "reset", "ada"]);
    assert!(
        link.trim().contains("/web/console/reset.html#token="),
        "{link}"
    );
    assert_eq!(
        run(&["operator", "disable", "ada"]),
        "disabled operator ada\n"
    );
    assert!(run(&["operator", "list"]).starts_with("ada\tdisabled\t"));
    // A weak password is refused before anything is written.
    let mut child = surechat()
        .args([
            "operator",
            "add",
            "cy",
            "--name",
            "Cy",
            "--email",
            "cy@example.com",
            "--password-stdin",
            "--data",
        ])
        .arg(&data)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "password").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(!run(&["operator", "list"]).contains("cy"));
}
