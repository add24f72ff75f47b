//! `reach::email::Mailer` against a real SMTP server ([`testkit::smtp::Sink`]): what arrives is
//! the email that was meant (Unicode subject and body intact after encoding, the headers the
//! outbox relies on), and the failures a relay can cause are reported as worth retrying: the
//! relay down, the relay refusing with 451, and a relay that accepts the connection and then
//! says nothing. Once it is back, the same mailer delivers.

use std::time::{Duration, Instant};

use server::reach::email::{Email, Mailer, Security, SendError, SmtpSettings};
use testkit::smtp::Sink;
use testkit::WAIT;

/// The mailer's per-command limit; refusals must come well within it.
const TIMEOUT: Duration = Duration::from_secs(5);

fn mailer(sink: &Sink) -> Mailer {
    mailer_for(sink.port(), TIMEOUT)
}

fn mailer_for(port: u16, timeout: Duration) -> Mailer {
    Mailer::new(&SmtpSettings {
        host: "127.0.0.1".to_owned(),
        port,
        security: Security::None,
        username: None,
        password: None,
        timeout,
        ca_file: None,
    })
    .expect("valid settings")
}

fn email(n: u32) -> Email {
    Email {
        from: "Surechat <noreply@chat.example.com>".into(),
        to: "Zoë Müller <zoe@example.org>".into(),
        subject: format!("Nouveau message n°{n} — ça va ? 👋"),
        text: format!(
            "Bonjour Zoë,\n\nFrançois a écrit : « on se voit à 18 h ? » 🙂\nMessage {n}.\n\n\
             Se désabonner : https://chat.example.com/u\n"
        ),
        message_id: format!("notify-{n}@chat.example.com"),
        list_unsubscribe_url: Some(format!("https://chat.example.com/v1/unsubscribe?t={n}.sig")),
        reply_to: None,
    }
}

/// Sends `email` and expects a transient failure, reported within the mailer's timeout.
async fn expect_transient(mailer: &Mailer, email: &Email) -> String {
    let started = Instant::now();
    let result = mailer.send(email).await;
    let took = started.elapsed();
    assert!(took < TIMEOUT, "the failure took {took:?}");
    match result {
        Err(SendError::Transient(why)) => why,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn an_email_arrives_as_it_was_meant() {
    let sink = Sink::start();
    let mailer = mailer(&sink);
    let sent = email(1);
    mailer.send(&sent).await.expect("the sink accepts it");

    let received = sink.wait_for(1, WAIT);
    assert_eq!(received.len(), 1, "exactly one message");
    let got = &received[0];
    assert_eq!(got.from, "noreply@chat.example.com");
    assert_eq!(got.to, ["zoe@example.org"]);
    assert_eq!(got.text, sent.text, "the body survives encoding");
    assert_eq!(got.header("Subject"), Some(sent.subject.as_str()));
    assert_eq!(got.header("To"), Some("Zoë Müller <zoe@example.org>"));
    assert_eq!(
        got.header("From"),
        Some("Surechat <noreply@chat.example.com>")
    );
    assert_eq!(
        got.header("Message-ID"),
        Some("<notify-1@chat.example.com>")
    );
    assert_eq!(
        got.header("List-Unsubscribe"),
        Some("<https://chat.example.com/v1/unsubscribe?t=1.sig>")
    );
    assert_eq!(
        got.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(got.header("Date").is_some(), "{:?}", got.headers);
    // As sent (the decoded value is Python's rendering, which quotes the charset).
    assert!(
        got.raw
            .contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"),
        "{}",
        got.raw
    );
    assert!(got.raw.is_ascii(), "encoded for any relay: {}", got.raw);
}

#[tokio::test]
async fn a_relay_that_is_down_is_a_transient_failure_until_it_is_back() {
    let mut sink = Sink::start();
    let mailer = mailer(&sink);
    mailer.send(&email(1)).await.expect("the sink is up");

    sink.stop();
    let why = expect_transient(&mailer, &email(2)).await;
    assert!(!why.is_empty());

    sink.restart();
    mailer.send(&email(2)).await.expect("the sink is back");
    let received = sink.wait_for(2, WAIT);
    let ids: Vec<_> = received.iter().map(|m| m.header("Message-ID")).collect();
    assert_eq!(
        ids,
        [
            Some("<notify-1@chat.example.com>"),
            Some("<notify-2@chat.example.com>")
        ]
    );
}

#[tokio::test]
async fn a_451_refusal_is_a_transient_failure() {
    let sink = Sink::start_failing();
    let mailer = mailer(&sink);
    let why = expect_transient(&mailer, &email(1)).await;
    assert!(why.contains("451"), "{why}");
    assert!(sink.messages().is_empty(), "nothing was kept");

    sink.set_failing(false);
    mailer
        .send(&email(1))
        .await
        .expect("the sink accepts again");
    assert_eq!(sink.wait_for(1, WAIT).len(), 1);
}

#[tokio::test]
async fn a_relay_that_never_answers_is_a_transient_failure_within_the_timeout() {
    // Accepts connections and keeps them open without ever sending the greeting.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            connections.push(socket);
        }
    });
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    let why = match mailer_for(port, timeout).send(&email(1)).await {
        Err(SendError::Transient(why)) => why,
        other => panic!("expected a transient failure, got {other:?}"),
    };
    let took = started.elapsed();
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(5),
        "gave up after {took:?}: {why}"
    );
    held.abort();
}
