//! Messages with files, on virtual time: they wait for their uploads and hold up the messages
//! behind them (FIFO per sender), uploads are retried with backoff and resumed, a refused file
//! fails its message alone.

use super::*;
use crate::session::files::{OutboxFile, UploadFailure, UploadOrder};

fn file(upload_id: &str, length: u64) -> OutboxFile {
    OutboxFile {
        upload_id: upload_id.into(),
        name: format!("{upload_id}.pdf"),
        content_type: Some("application/pdf".into()),
        length,
    }
}

/// Drains the actions: upload orders, and the attempts cancelled (transport actions are not
/// what these tests look at).
fn actions(session: &mut Session) -> (Vec<UploadOrder>, Vec<u64>) {
    let (mut orders, mut cancelled) = (Vec::new(), Vec::new());
    while let Some(action) = session.poll_action() {
        match action {
            Action::Upload(order) => orders.push(order),
            Action::CancelUpload { attempt } => cancelled.push(attempt),
            Action::Connect { .. } | Action::Disconnect => {}
        }
    }
    (orders, cancelled)
}

/// Drains the transmits; the `send` frames among them.
fn sends(session: &mut Session) -> Vec<frames::Send> {
    std::iter::from_fn(|| session.poll_transmit())
        .filter_map(|frame| match frame {
            ClientFrame::Send(send) => Some(send),
            _ => None,
        })
        .collect()
}

fn ids(sends: &[frames::Send]) -> Vec<&str> {
    sends.iter().map(|s| s.id.as_str()).collect()
}

fn ack(session: &mut Session, now: Instant, id: &str, seq: u64) {
    session.handle_frame(
        now,
        ServerFrame::Ack(frames::Ack {
            id: id.into(),
            conversation: "b1".into(),
            seq,
            ts: 1,
        }),
    );
}

fn events(session: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

#[test]
fn a_message_with_files_waits_for_its_uploads_and_holds_up_those_behind_it() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    events(&mut session);
    session.send(t0, "m1".into(), "b1", "before", None);
    let files = vec![file("f1", 100), file("f2", 50)];
    session.send_with_files(t0, "m2".into(), "b1", "the scans", files, None);
    session.send(t0, "m3".into(), "b1", "after", None);
    // Another conversation does not wait for b1's files.
    session.send(t0, "m4".into(), "b2", "elsewhere", None);
    assert_eq!(ids(&sends(&mut session)), ["m1", "m4"]);
    let (orders, _) = actions(&mut session);
    assert_eq!(
        orders
            .iter()
            .map(|o| (o.message.as_str(), o.file.upload_id.as_str(), o.resume))
            .collect::<Vec<_>>(),
        [("m2", "f1", false), ("m2", "f2", false)]
    );
    assert_eq!(
        session.messages("b1")[1].attachments[0].name,
        "f1.pdf",
        "an outbox message shows its files"
    );

    session.handle_upload_progress(t0, orders[0].attempt, 40);
    assert_eq!(
        session.upload_progress("m2"),
        Some(UploadProgress {
            sent: 40,
            total: 150
        })
    );
    assert!(events(&mut session).contains(&Event::UploadProgress {
        conversation: "b1".into(),
        id: "m2".into(),
        upload_id: "f1".into(),
        offset: 40,
        length: 100,
    }));
    session.handle_upload_done(t0, orders[0].attempt);
    ack(&mut session, t0, "m1", 1);
    assert!(sends(&mut session).is_empty(), "f2 is not uploaded yet");
    assert_eq!(session.delivery_status("m2"), Some(DeliveryStatus::Sending));

    session.handle_upload_done(t0, orders[1].attempt);
    let written = sends(&mut session);
    assert_eq!(ids(&written), ["m2", "m3"], "in the order of the calls");
    assert_eq!(written[0].attachments, ["f1", "f2"]);
    assert!(written[1].attachments.is_empty());
    ack(&mut session, t0, "m2", 2);
    ack(&mut session, t0, "m3", 3);
    assert_eq!(session.upload_progress("m2"), None, "out of the outbox");
    assert_eq!(
        session.delivery_status("m2"),
        Some(DeliveryStatus::Sent { seq: 2 })
    );
}

#[test]
fn a_failed_upload_is_tried_again_with_backoff_and_late_reports_are_ignored() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    session.send_with_files(t0, "m1".into(), "b1", "", vec![file("f1", 10)], None);
    let (first, _) = actions(&mut session);
    session.handle_upload_failed(
        t0,
        first[0].attempt,
        UploadFailure::Transient {
            retry_after_ms: None,
        },
    );
    assert!(actions(&mut session).0.is_empty(), "not at once");
    let at = session.poll_timeout().expect("a retry is timed");
    assert!(
        at <= t0 + Duration::from_millis(250),
        "the first retry is fast"
    );
    if at > t0 {
        session.handle_timeout(at - Duration::from_millis(1));
        assert!(actions(&mut session).0.is_empty());
    }
    session.handle_timeout(at);
    let (second, _) = actions(&mut session);
    assert_eq!(second.len(), 1);
    assert!(
        second[0].resume,
        "the first try may have created it: ask first"
    );
    assert_ne!(second[0].attempt, first[0].attempt);

    // A report of the abandoned try changes nothing.
    session.handle_upload_done(at, first[0].attempt);
    assert!(sends(&mut session).is_empty());

    // The server said when: that is when.
    session.handle_upload_failed(
        at,
        second[0].attempt,
        UploadFailure::Transient {
            retry_after_ms: Some(5_000),
        },
    );
    assert_eq!(
        session.poll_timeout(),
        Some(at + Duration::from_millis(5_000))
    );
    session.handle_timeout(at + Duration::from_millis(5_000));
    let (third, _) = actions(&mut session);
    session.handle_upload_done(at, third[0].attempt);
    let written = sends(&mut session);
    assert_eq!(ids(&written), ["m1"]);
    assert_eq!(written[0].attachments, ["f1"]);
}

#[test]
fn a_refused_file_fails_its_message_without_holding_up_the_others() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    let files = vec![file("f1", 10), file("f2", 10)];
    session.send_with_files(t0, "m1".into(), "b1", "", files, None);
    session.send(t0, "m2".into(), "b1", "after", None);
    assert!(sends(&mut session).is_empty());
    let (orders, _) = actions(&mut session);
    events(&mut session);
    session.handle_upload_failed(
        t0,
        orders[0].attempt,
        UploadFailure::Refused {
            code: ErrorCode::UnsupportedType,
            message: "not an allowed type".into(),
        },
    );
    let (_, cancelled) = actions(&mut session);
    assert_eq!(cancelled, [orders[1].attempt], "its other file stops");
    assert!(events(&mut session).iter().any(|e| matches!(e,
        Event::DeliveryStatus { id, status: DeliveryStatus::Failed { code, .. }, .. }
            if id == "m1" && code == "unsupported_type")));
    assert_eq!(ids(&sends(&mut session)), ["m2"], "the next one goes");
    ack(&mut session, t0, "m2", 1);

    // The cancelled upload's late news does not revive the message.
    session.handle_upload_done(t0, orders[1].attempt);
    assert!(sends(&mut session).is_empty());
    assert_eq!(session.failed_count(), 1);

    // A retry by hand uploads again (asking the server first), same ids.
    assert_eq!(session.retry_failed(t0), 1);
    let (again, _) = actions(&mut session);
    assert_eq!(
        again
            .iter()
            .map(|o| (o.file.upload_id.as_str(), o.resume))
            .collect::<Vec<_>>(),
        [("f1", true), ("f2", true)]
    );
}

#[test]
fn attachment_pending_uploads_again_then_resends_in_order() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    session.send_with_files(t0, "m1".into(), "b1", "", vec![file("f1", 10)], None);
    session.send(t0, "m2".into(), "b1", "after", None);
    let (orders, _) = actions(&mut session);
    session.handle_upload_done(t0, orders[0].attempt);
    assert_eq!(ids(&sends(&mut session)), ["m1", "m2"], "pipelined");
    // The server does not hold the file as complete after all (say it was restored from a
    // backup); the message behind it is refused by its FIFO guard.
    let mut pending = frames::ErrorFrame::new(
        ErrorCode::AttachmentPending,
        "upload f1 is not complete",
        Some("m1".into()),
    );
    pending.permanent = false;
    session.handle_frame(t0, ServerFrame::Error(pending));
    session.handle_frame(
        t0,
        ServerFrame::Error(frames::ErrorFrame::new(
            ErrorCode::OutOfOrder,
            "resend",
            Some("m2".into()),
        )),
    );
    let (again, _) = actions(&mut session);
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].file.upload_id.as_str(), again[0].resume),
        ("f1", true)
    );
    assert_eq!(session.delivery_status("m1"), Some(DeliveryStatus::Sending));
    let later = t0 + Duration::from_secs(1);
    session.handle_timeout(later);
    assert!(sends(&mut session).is_empty(), "both wait for the upload");
    session.handle_upload_done(later, again[0].attempt);
    assert_eq!(ids(&sends(&mut session)), ["m1", "m2"]);
}

#[test]
fn uploads_resume_after_a_restart_pause_offline_and_go_at_once_when_back() {
    let t0 = Instant::now();
    let snapshot = Snapshot {
        user_id: Some("ana".into()),
        outbox: vec![PendingMessage {
            id: "m1".into(),
            conversation: "b1".into(),
            body: String::new(),
            failed: None,
            files: vec![file("f1", 10), file("f2", 10), file("f3", 10)],
        }],
        conversations: Vec::new(),
    };
    let config = Config {
        uploads_max: 1,
        ..Config::default()
    };
    let mut session = Session::restore(config, "t", snapshot);
    assert!(actions(&mut session).0.is_empty(), "nothing before connect");
    session.connect(t0);
    let Some(Action::Connect { .. }) = session.poll_action() else {
        panic!("a connect")
    };
    let (orders, _) = actions(&mut session);
    assert_eq!(orders.len(), 1, "one at a time");
    assert!(orders[0].resume, "a previous run may have created it");
    assert_eq!(orders[0].file.upload_id, "f1");
    // While the only slot is busy, f2 and f3 set no timer.
    assert_eq!(session.upload_progress("m1").map(|p| p.total), Some(30));

    // Offline: the upload stops; nothing starts; no timer for it.
    session.handle_network(t0, false);
    let (none, cancelled) = actions(&mut session);
    assert!(none.is_empty());
    assert_eq!(cancelled, [orders[0].attempt]);
    assert_eq!(session.poll_timeout(), None);
    // Back: at once, the first file first.
    session.handle_network(t0 + Duration::from_secs(3_600), true);
    let (back, _) = actions(&mut session);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].file.upload_id, "f1");
    assert_ne!(back[0].attempt, orders[0].attempt);
}
