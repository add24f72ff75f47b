//! The sans-IO session on its own: no socket, no clock, no tokio. This plays the server's part
//! by hand to show what a driver does — carry out actions, write transmits, feed frames back —
//! and how a message moves from `sending` to `sent`, surviving a lost connection on the way.
//!
//! ```sh
//! cargo run -p surechat-client --no-default-features --example session
//! ```

use std::time::{Duration, Instant};

use client::session::{Action, Config, DeliveryStatus, Event, Session};
use protocol::frames::{self, ClientFrame, ServerFrame};
use protocol::{Role, PROTOCOL_VERSION};

fn welcome() -> ServerFrame {
    ServerFrame::Welcome(frames::Welcome {
        v: PROTOCOL_VERSION,
        user_id: "ana".into(),
        role: Role::Client,
        connection_id: "c1".into(),
        heartbeat_ms: 25_000,
        timeout_ms: 60_000,
        conversations: vec![],
    })
}

/// Opens the transport the session asks for and answers its `hello` with a `welcome`.
fn connect(session: &mut Session, now: Instant) {
    while let Some(action) = session.poll_action() {
        if let Action::Connect { attempt } = action {
            println!("driver: opening a WebSocket (attempt {attempt})");
            session.handle_open(now, attempt);
        }
    }
    match session.poll_transmit() {
        Some(ClientFrame::Hello(hello)) => println!("-> hello, cursors {:?}", hello.cursors),
        other => panic!("expected hello, got {other:?}"),
    }
    session.handle_frame(now, welcome());
}

fn print_events(session: &mut Session) {
    while let Some(event) = session.poll_event() {
        match event {
            Event::DeliveryStatus { id, status, .. } => {
                println!("   status of {}: {}", &id[..8], status.name())
            }
            Event::ConnectionStatus(status) => println!("   connection: {status:?}"),
            _ => {}
        }
    }
}

fn main() {
    let mut now = Instant::now();
    let mut session = Session::new(Config::default(), "a token from your backend");
    session.connect(now);
    connect(&mut session, now);
    print_events(&mut session);

    // The app sends: the message is in the outbox before anything is written.
    let id = "3f1c2a9e-5b7d-4c1e-8f2a-6b9d0e1c2f3a".to_owned();
    session.send(
        now,
        id.clone(),
        "booking-42",
        "Is early check-in possible?",
        None,
    );
    let Some(ClientFrame::Send(send)) = session.poll_transmit() else {
        panic!("the message is written at once while connected");
    };
    println!("-> send {} {:?}", &send.id[..8], send.body);

    // The connection drops before the ack: the message stays in the outbox, unchanged.
    now += Duration::from_millis(10);
    session.handle_close(now, 1, None);
    print_events(&mut session);
    println!("   outbox after the drop: {}", session.pending_count());

    // The session reconnects after its backoff and writes the same id again.
    now += Duration::from_secs(1);
    session.handle_timeout(now);
    connect(&mut session, now);
    let Some(ClientFrame::Send(again)) = session.poll_transmit() else {
        panic!("the outbox is resent after welcome");
    };
    assert_eq!(again.id, id, "the same id: the server stores it once");
    println!("-> send {} again", &again.id[..8]);

    // The server stores it and acknowledges.
    session.handle_frame(
        now,
        ServerFrame::Ack(frames::Ack {
            id: id.clone(),
            conversation: "booking-42".into(),
            seq: 1,
            ts: 0,
        }),
    );
    print_events(&mut session);
    assert_eq!(session.pending_count(), 0);
    assert_eq!(
        session.delivery_status(&id),
        Some(DeliveryStatus::Sent { seq: 1 })
    );
    println!("stored once, at seq 1; the outbox is empty");
}
