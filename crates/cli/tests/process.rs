//! The `surechat` binary as a process: a crash right after acks loses nothing, SIGTERM shuts down
//! gracefully, `surechat token` mints tokens the server accepts, `surechat operator` keeps the
//! operator directory, and `surechat demo` registers its operator.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use protocol::frames::{self, ClientFrame, ServerFrame};
use protocol::{close, Role};
use serde_json::json;
use testkit::{Device, Http, Served};

const ADMIN: &str = "process-test-admin-key-0123";
const SECRET: &str = "process-test-jwt-secret-0123456789abcdef";

/// `surechat serve` on `data` with the tests' settings, `env` on top.
fn serve(data: &std::path::Path, env: &[(&str, &str)]) -> Served {
    Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            // The tests' operators join the directory on first use, unless a test says otherwise.
            .env("SURECHAT_OPERATORS_AUTO_REGISTER", "true")
            .envs(env.iter().copied())
            .env("SURECHAT_ADMIN_KEY", ADMIN)
            .env("SURECHAT_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit()),
    )
}

async fn token(http: &Http, user: &str, role: Role) -> String {
    http.token(ADMIN, user, role).await
}

async fn all_messages(http: &Http, token: &str) -> Vec<frames::Message> {
    http.history(token, "b1").await
}

/// SIGKILL right after acks: every acked message is there after a restart, with its seq, and a
/// resend of its id answers the same seq; unacked ones can be sent again without duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acks_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[]);
    let http = served.http();
    let created = http
        .json(
            "POST",
            "/v1/conversations",
            Some(ADMIN),
            &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}]}),
        )
        .await;
    assert_eq!(created.status, 201);
    let token = token(&http, "ana", Role::Client).await;
    let mut ana = Device::connect(&served.ws(), &token, vec![]).await;
    let mut sent = Vec::new();
    for i in 0..60 {
        sent.push(ana.send_message("b1", &format!("m{i}")).await);
    }
    let mut acked = Vec::new();
    while acked.len() < 30 {
        if let ServerFrame::Ack(ack) = ana.next().await {
            acked.push((ack.id, ack.seq));
        }
    }
    // Keep sending while the process dies, so some writes are in flight at the kill.
    for i in 60..120 {
        sent.push(ana.send_message("b1", &format!("m{i}")).await);
    }
    served.child.kill().expect("SIGKILL");
    served.child.wait().unwrap();
    // Acks already on the wire count too.
    while let Ok(frame) = ana.next_or_close().await {
        if let ServerFrame::Ack(ack) = frame {
            acked.push((ack.id, ack.seq));
        }
    }
    drop(served);

    let served = serve(dir.path(), &[]);
    let http = served.http();
    let messages = all_messages(&http, &token).await;
    assert_eq!(
        messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=messages.len() as u64).collect::<Vec<_>>()
    );
    for (id, seq) in &acked {
        let stored = messages
            .iter()
            .find(|m| &m.id == id)
            .unwrap_or_else(|| panic!("acked {id} was lost"));
        assert_eq!(stored.seq, *seq);
    }
    let stored_before = messages.len();
    // Resend everything (as a device would from its outbox): acked ids keep their seqs, the rest
    // are stored once, after them.
    let mut ana = Device::connect(&served.ws(), &token, vec![]).await;
    for (i, id) in sent.iter().enumerate() {
        ana.send(&ClientFrame::Send(frames::Send {
            id: id.clone(),
            conversation: "b1".into(),
            body: format!("m{i}"),
            kind: Default::default(),
            attachments: Vec::new(),
        }))
        .await;
    }
    let mut answers = std::collections::HashMap::new();
    while answers.len() < sent.len() {
        match ana.next().await {
            ServerFrame::Ack(ack) => answers.insert(ack.id, ack.seq),
            ServerFrame::Error(err) => panic!("resend refused: {err:?}"),
            _ => None,
        };
    }
    for (id, seq) in &acked {
        assert_eq!(answers[id], *seq, "a resent id answers its original seq");
    }
    let messages = all_messages(&http, &token).await;
    assert_eq!(
        messages.len(),
        sent.len(),
        "{stored_before} survived the crash; the rest were stored once on resend"
    );
    let order: Vec<&String> = messages.iter().map(|m| &m.id).collect();
    assert_eq!(
        order,
        sent.iter().collect::<Vec<_>>(),
        "FIFO survives the crash and the resend"
    );
}

/// SIGTERM: devices are closed with 1012 and the process exits cleanly; data persists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[]);
    let http = served.http();
    http.json(
        "POST",
        "/v1/conversations",
        Some(ADMIN),
        &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}]}),
    )
    .await;
    let token = token(&http, "ana", Role::Client).await;
    let mut ana = Device::connect(&served.ws(), &token, vec![]).await;
    let id = ana.send_message("b1", "before the restart").await;
    ana.ack(&id).await;
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        ana.closed().await.map(|c| c.0),
        Some(close::SERVICE_RESTART)
    );
    let exit = served.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let served = serve(dir.path(), &[]);
    assert_eq!(all_messages(&served.http(), &token).await.len(), 1);
}

/// SIGTERM while a device keeps sending: it gets an ack for every message that was stored, then
/// the close 1012 — the closing handshake keeps the kernel from resetting the socket under the
/// device's unread frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_sending_acks_every_stored_message_then_1012() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let dir = tempfile::tempdir().unwrap();
    let fast = [
        ("SURECHAT_SENDS_PER_SECOND_MAX", "1000000"),
        ("SURECHAT_SENDS_BURST_MAX", "1000000"),
    ];
    let mut served = serve(dir.path(), &fast);
    let http = served.http();
    http.json(
        "POST",
        "/v1/conversations",
        Some(ADMIN),
        &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}]}),
    )
    .await;
    let token = token(&http, "ana", Role::Client).await;
    let ws = testkit::connect_raw(&served.ws()).await;
    let (mut sink, mut stream) = ws.split();
    let hello = ClientFrame::Hello(frames::Hello {
        v: 1,
        token: token.clone(),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    sink.send(WsMessage::text(hello.encode())).await.unwrap();
    // The device sends without pause until the connection goes, and reads on its own.
    let sending = tokio::spawn(async move {
        for n in 0..200_000 {
            let send = ClientFrame::Send(frames::Send {
                id: testkit::uuid(),
                conversation: "b1".into(),
                body: format!("message {n}"),
                kind: Default::default(),
                attachments: Vec::new(),
            });
            if sink.send(WsMessage::text(send.encode())).await.is_err() {
                break;
            }
        }
    });
    let mut acked = std::collections::HashSet::new();
    let mut terminated = false;
    let code = loop {
        let next = tokio::time::timeout(testkit::WAIT, stream.next())
            .await
            .expect("a frame in time");
        match next {
            Some(Ok(WsMessage::Text(text))) => {
                if let Ok(ServerFrame::Ack(ack)) = frames::decode_server_frame(text.as_str()) {
                    acked.insert(ack.id);
                }
                if acked.len() >= 300 && !terminated {
                    terminated = true;
                    let pid = served.child.id().to_string();
                    assert!(Command::new("kill")
                        .args(["-TERM", &pid])
                        .status()
                        .unwrap()
                        .success());
                }
            }
            Some(Ok(WsMessage::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("the connection failed instead of closing: {err}"),
            None => break None,
        }
    };
    assert_eq!(code, Some(close::SERVICE_RESTART));
    sending.abort();
    let exit = served.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let served = serve(dir.path(), &[]);
    let stored = all_messages(&served.http(), &token).await;
    assert!(stored.len() >= 300);
    let missing = stored.iter().filter(|m| !acked.contains(&m.id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} stored messages were never acked",
        stored.len()
    );
}

/// Runs `surechat ARGS DATA` and returns its stdout; panics unless it succeeds.
fn surechat(args: &[&str], data: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(args)
        .arg(data)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "surechat {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `surechat operator add|list|disable` keep the directory in the data directory, also while
/// the server runs: a disabled operator's token is refused at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_command_keeps_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let added = surechat(
        &[
            "operator",
            "add",
            "olga",
            "--name",
            "Olga Petrova",
            "--data",
        ],
        dir.path(),
    );
    assert_eq!(added.trim(), "added operator olga (Olga Petrova)");
    let served = serve(dir.path(), &[("SURECHAT_OPERATORS_AUTO_REGISTER", "false")]);
    let http = served.http();
    let olga = token(&http, "olga", Role::Operator).await;
    let zed = token(&http, "zed", Role::Operator).await;
    assert_eq!(http.get("/v1/conversations", Some(&olga)).await.status, 200);
    let refused = http.get("/v1/conversations", Some(&zed)).await;
    assert_eq!(
        (refused.status, refused.problem_code().as_str()),
        (422, "unknown_operator")
    );
    let added = surechat(
        &[
            "operator",
            "add",
            "zed",
            "--name",
            "Zed",
            "--avatar-url",
            "https://example.com/zed.png",
            "--data",
        ],
        dir.path(),
    );
    assert_eq!(added.trim(), "added operator zed (Zed)");
    assert_eq!(http.get("/v1/conversations", Some(&zed)).await.status, 200);
    assert_eq!(
        surechat(&["operator", "list", "--data"], dir.path()),
        "olga\tactive\tOlga Petrova\t\nzed\tactive\tZed\thttps://example.com/zed.png\n"
    );
    let disabled = surechat(&["operator", "disable", "olga", "--data"], dir.path());
    assert_eq!(disabled.trim(), "disabled operator olga");
    // Disabling revoked the tokens issued so far; a new one meets the directory.
    let refused = http.get("/v1/conversations", Some(&olga)).await;
    assert_eq!(
        (refused.status, refused.problem_code().as_str()),
        (401, "token_invalid")
    );
    let olga = token(&http, "olga", Role::Operator).await;
    assert_eq!(http.get("/v1/conversations", Some(&olga)).await.status, 422);
    assert!(surechat(&["operator", "list", "--data"], dir.path()).starts_with("olga\tdisabled\t"));
    // Adding again makes active again.
    let again = surechat(
        &["operator", "add", "olga", "--name", "Olga", "--data"],
        dir.path(),
    );
    assert_eq!(again.trim(), "updated operator olga (Olga)");
    assert_eq!(http.get("/v1/conversations", Some(&olga)).await.status, 200);
    let missing = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["operator", "disable", "nobody", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no operator `nobody`"));
    let bad = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["operator", "add", "x", "--name", "", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an empty name is refused");
}

/// `surechat demo` puts its operator in the directory, so the operator token it prints works
/// although operators are not registered on first use by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_registers_its_operator() {
    let dir = tempfile::tempdir().unwrap();
    let mut operator = None;
    let mut token_next = false;
    let served = Served::try_spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .env_remove("SURECHAT_OPERATORS_AUTO_REGISTER")
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit()),
        |line| {
            if token_next {
                operator = Some(line.trim().to_owned());
            }
            token_next = line.starts_with("operator olga token:");
        },
    )
    .expect("the demo prints its address");
    let operator = operator.expect("the demo prints the operator's token");
    let directory = served.http().get("/v1/operators", Some(&operator)).await;
    assert_eq!(directory.status, 200, "{}", directory.body);
    assert_eq!(
        directory.json()["operators"],
        json!([{"id": "olga", "name": "Olga", "avatar_url": null, "active": true}])
    );
}

/// `surechat token` signs with the secret kept in the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_command_mints_tokens_the_server_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["token", "--user", "olga", "--role", "operator", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let secret = std::fs::read_to_string(dir.path().join("jwt-secret")).unwrap();
    assert!(secret.len() >= 32);
    // An operator token needs its operator in the directory.
    surechat(
        &["operator", "add", "olga", "--name", "Olga", "--data"],
        dir.path(),
    );
    // A server on the same data directory (no secret in the environment) accepts it.
    let served = Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path())
            .env_remove("SURECHAT_JWT_SECRET")
            .env_remove("SURECHAT_ADMIN_KEY")
            .stderr(Stdio::null()),
    );
    let response = served.http().get("/v1/conversations", Some(&token)).await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (200, r#"{"conversations":[]}"#)
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["token", "--user", "olga", "--role", "boss"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--role"));
}

/// A bad configuration is refused at start with the key named.
#[test]
fn bad_configuration_names_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SURECHAT_MESSAGE_BYTES_MAX", "lots")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("message_bytes_max"));
}

/// A device process killed with messages in its outbox sends them, once and in order, when it
/// starts again from its local store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_device_resends_its_outbox_after_restart() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(&dir.path().join("server"), &[]);
    let http = served.http();
    http.json(
        "POST",
        "/v1/conversations",
        Some(ADMIN),
        &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}]}),
    )
    .await;
    let token = token(&http, "ana", Role::Client).await;
    let store = dir.path().join("ana.db");
    // First run: the server is unreachable (nothing listens on that port).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut chat = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args([
            "chat",
            "--conversation",
            "b1",
            "--server",
            &format!("http://{closed}"),
            "--store",
        ])
        .arg(&store)
        .env("SURECHAT_TOKEN", &token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = chat.stdin.take().unwrap();
    for i in 0..5 {
        writeln!(stdin, "offline {i}").unwrap();
    }
    stdin.flush().unwrap();
    let mut lines = BufReader::new(chat.stdout.take().unwrap()).lines();
    let mut queued = 0;
    while queued < 5 {
        let line = lines
            .next()
            .expect("chat prints each queued message")
            .unwrap();
        queued += usize::from(line.contains("sending"));
    }
    chat.kill().unwrap(); // SIGKILL, with five messages in the outbox
    chat.wait().unwrap();
    assert!(all_messages(&http, &token).await.is_empty());

    // Second run, now reachable: the outbox goes out by itself.
    let mut tail = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args([
            "tail",
            "--conversation",
            "b1",
            "--server",
            &served.base,
            "--store",
        ])
        .arg(&store)
        .env("SURECHAT_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let mut shown = Vec::new();
    while shown.len() < 5 {
        let line = lines.next().expect("tail prints the messages").unwrap();
        if line.starts_with('#') {
            shown.push(line);
        }
    }
    tail.kill().unwrap();
    tail.wait().unwrap();
    let stored = all_messages(&http, &token).await;
    let bodies: Vec<&str> = stored.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        (0..5).map(|i| format!("offline {i}")).collect::<Vec<_>>(),
        "once each, in order"
    );
    assert_eq!(shown[0], "#1 ana (client): offline 0");
}

/// `surechat send --attach` uploads the file and sends the message naming it; `surechat tail`
/// shows the message with a line for the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_attaches_a_file_and_tail_shows_it() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let served = serve(&dir.path().join("server"), &[]);
    let http = served.http();
    http.json(
        "POST",
        "/v1/conversations",
        Some(ADMIN),
        &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}]}),
    )
    .await;
    let token = token(&http, "ana", Role::Client).await;
    let path = dir.path().join("invoice.pdf");
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..5_000u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(&path, &pdf).unwrap();
    let send = |args: &[&std::ffi::OsStr]| {
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["send", "--conversation", "b1", "--server", &served.base])
            .args(args)
            .env("SURECHAT_TOKEN", &token)
            .output()
            .unwrap()
    };
    let bare = send(&[]);
    assert!(!bare.status.success());
    assert!(String::from_utf8_lossy(&bare.stderr).contains("--attach"));
    let sent = send(&[
        "--attach".as_ref(),
        path.as_os_str(),
        "see attached".as_ref(),
    ]);
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&sent.stdout).trim(), "1");
    let stored = all_messages(&http, &token).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].body, "see attached");
    let sha: String = Sha256::digest(&pdf)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(stored[0].attachments[0].sha256, sha);

    let mut tail = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["tail", "--conversation", "b1", "--server", &served.base])
        .env("SURECHAT_TOKEN", &token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines: Vec<String> = BufReader::new(tail.stdout.take().unwrap())
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    tail.kill().unwrap();
    tail.wait().unwrap();
    assert_eq!(
        lines,
        [
            "#1 ana (client): see attached",
            "  📎 invoice.pdf (application/pdf, 4.9 KiB)"
        ]
    );
}

/// Two nodes on PostgreSQL: node 1 is SIGKILLed mid-conversation; the client's SDK moves to
/// node 2 (its second URL) and resumes; nothing acked is lost and nothing is doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_moves_its_devices_to_another() {
    use client::{Client, ClientOptions, Config, DeliveryStatus, Event};
    let database = testkit::postgres::shared_database();
    let (url, schema) = server::store::postgres::fresh_schema(&database, "surechat_test")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start = |n: &str| serve(&dir.path().join(n), &[("SURECHAT_DATABASE", url.as_str())]);
    let mut one = start("one");
    let two = start("two");
    let created = one
        .http()
        .json("POST", "/v1/conversations", Some(ADMIN), &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]}))
        .await;
    assert_eq!(created.status, 201);
    let ana_token = token(&one.http(), "ana", Role::Client).await;
    let mut olga = Device::connect(
        &two.ws(),
        &token(&two.http(), "olga", Role::Operator).await,
        vec![],
    )
    .await;
    let mut options = ClientOptions::new(one.ws(), ana_token.clone());
    options.urls.push(two.ws());
    options.config = Config {
        backoff_first_ms: 50,
        backoff_base_ms: 100,
        backoff_cap_ms: 500,
        ..Config::default()
    };
    let (ana, mut events) = Client::start(options).unwrap();
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(ana.send("b1", &format!("before {i}")).unwrap());
    }
    let mut sent = 0;
    while sent < 20 {
        if let Some(Event::DeliveryStatus {
            status: DeliveryStatus::Sent { .. },
            ..
        }) = events.recv().await
        {
            sent += 1;
        }
    }
    one.child.kill().unwrap(); // SIGKILL node 1 mid-conversation
    one.child.wait().unwrap();
    for i in 0..20 {
        ids.push(ana.send("b1", &format!("after {i}")).unwrap());
    }
    let received = olga.messages("b1", 40).await;
    assert_eq!(
        received.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        ids,
        "once each, in order, across the kill"
    );
    assert_eq!(
        received.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
    while ana.pending_count().await.unwrap() > 0 {
        events.recv().await.expect("the client keeps running");
    }
    let stored = all_messages(&two.http(), &ana_token).await;
    assert_eq!(stored.len(), 40);
    ana.stop().await;
    drop(two);
    server::store::postgres::drop_schema(&database, &schema)
        .await
        .unwrap();
}

/// `surechat --version` names the release and every protocol version it speaks.
#[test]
fn version_names_the_protocol_versions() {
    let output = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let spoken: Vec<String> = protocol::PROTOCOL_VERSIONS
        .iter()
        .map(u32::to_string)
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!(
            "surechat {} (protocol {})",
            env!("CARGO_PKG_VERSION"),
            spoken.join(", ")
        )
    );
}

/// Two nodes on PostgreSQL: an operator connected to node 1 is available to a guest on node 2;
/// when node 1 is SIGKILLed (no chance to withdraw), node 2 sees the operator go offline once
/// node 1's presence rows expire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_takes_its_operators_presence_with_it() {
    let database = testkit::postgres::shared_database();
    let (url, schema) = server::store::postgres::fresh_schema(&database, "surechat_test")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SURECHAT_DATABASE", url.as_str()),
        ("SURECHAT_PRESENCE_HEARTBEAT_MS", "100"),
        ("SURECHAT_PRESENCE_TTL_MS", "600"),
    ];
    let mut one = serve(&dir.path().join("one"), &env);
    let two = serve(&dir.path().join("two"), &env);
    let created = two
        .http()
        .json("POST", "/v1/conversations", Some(ADMIN), &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]}))
        .await;
    assert_eq!(created.status, 201);
    let mut ana = Device::connect(
        &two.ws(),
        &token(&two.http(), "ana", Role::Client).await,
        vec![],
    )
    .await;
    let _olga = Device::connect(
        &one.ws(),
        &token(&one.http(), "olga", Role::Operator).await,
        vec![],
    )
    .await;
    let presence = |f: &ServerFrame| match f {
        ServerFrame::Presence(p) if p.user_id == "olga" => Some(p.status),
        _ => None,
    };
    let seen = ana.wait_for("olga available via node 1", presence).await;
    assert_eq!(seen, frames::PresenceStatus::Available);
    let killed = std::time::Instant::now();
    one.child.kill().unwrap();
    one.child.wait().unwrap();
    let seen = ana.wait_for("olga offline after the kill", presence).await;
    assert_eq!(seen, frames::PresenceStatus::Offline);
    // The documented bound is presence_ttl_ms + presence_heartbeat_ms (700 ms here); the margin
    // is for a loaded machine, while the default bound (20 s) would be far beyond it.
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        killed.elapsed()
    );
    drop(two);
    server::store::postgres::drop_schema(&database, &schema)
        .await
        .unwrap();
}
