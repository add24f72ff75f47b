//! The chaos run's checker: convergence, then the delivery contract against storage, and every
//! attachment against what was sent — as stored, as each device holds it, and as downloaded.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use client::{Attachment, DeliveryStatus};
use server::store::{Store, StoredMessage};

use super::files::{sha256, SentFile};
use super::{Device, Sent};

/// Differences between a message's attachments and the files sent with it, if any.
fn attachments_differ(attachments: &[Attachment], sent: &[SentFile]) -> Option<String> {
    let held: Vec<(&str, u64, &str)> = attachments
        .iter()
        .map(|a| (a.name.as_str(), a.size, a.sha256.as_str()))
        .collect();
    let want: Vec<(&str, u64, &str)> = sent
        .iter()
        .map(|f| (f.name.as_str(), f.size, f.sha256.as_str()))
        .collect();
    (held != want).then(|| format!("{held:?}, sent {want:?}"))
}

/// Downloads, through each device, every attachment of the messages it received, and compares
/// the bytes' hash with what was sent; also compares the descriptions the device holds. Run
/// while the nodes are up, after convergence.
pub async fn verify_downloads(devices: &[Arc<Device>], sent: &[Sent]) -> Vec<String> {
    let by_id: HashMap<&str, &Sent> = sent.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut violations = Vec::new();
    for device in devices {
        let client = device.client.lock().await.clone();
        let held = match client.messages(&device.conversation).await {
            Ok(held) => held,
            Err(err) => {
                violations.push(format!("{}: cannot read its messages: {err}", device.user));
                continue;
            }
        };
        for message in held.iter().filter(|m| m.sender != device.user) {
            let Some(s) = by_id.get(message.id.as_str()) else {
                continue; // reported by the storage check
            };
            if let Some(difference) = attachments_differ(&message.attachments, &s.files) {
                violations.push(format!(
                    "{} holds {} #{} with attachments {difference}",
                    device.user, s.sender, s.n
                ));
                continue;
            }
            for (attachment, file) in message.attachments.iter().zip(&s.files) {
                match client.download(&attachment.id).await {
                    Ok(bytes) if sha256(&bytes) == file.sha256 => {}
                    Ok(bytes) => violations.push(format!(
                        "{}: download of {} ({} #{}) has {} bytes with another hash than sent",
                        device.user,
                        file.name,
                        s.sender,
                        s.n,
                        bytes.len()
                    )),
                    Err(err) => violations.push(format!(
                        "{}: cannot download {} ({} #{}): {err}",
                        device.user, file.name, s.sender, s.n
                    )),
                }
            }
        }
    }
    violations
}

/// Waits until every outbox is empty, both devices of each conversation hold the same number of
/// messages, and every own message is delivered or read.
pub async fn wait_for_convergence(
    devices: &[Arc<Device>],
    timeout: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut why = String::new();
    // Polls state (a bounded wait for a distributed condition), it does not synchronise on time.
    while tokio::time::Instant::now() < deadline {
        match converged(devices).await {
            Ok(()) => return Ok(()),
            Err(reason) => why = reason,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(why)
}

async fn converged(devices: &[Arc<Device>]) -> Result<(), String> {
    let mut cursors: HashMap<&str, u64> = HashMap::new();
    for device in devices {
        let client = device.client.lock().await.clone();
        let pending = client.pending_count().await.map_err(|e| e.to_string())?;
        if pending > 0 {
            return Err(format!(
                "{} has {pending} message(s) in its outbox",
                device.user
            ));
        }
        let cursor = client
            .cursor(&device.conversation)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(other) = cursors.insert(&device.conversation, cursor) {
            if other != cursor {
                return Err(format!(
                    "{}: devices hold {other} and {cursor} messages",
                    device.conversation
                ));
            }
        }
        for message in client
            .messages(&device.conversation)
            .await
            .map_err(|e| e.to_string())?
        {
            if let Some(status) = &message.status {
                if !matches!(status, DeliveryStatus::Delivered | DeliveryStatus::Read) {
                    return Err(format!(
                        "{}'s message {} is still {}",
                        device.user,
                        message.id,
                        status.name()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks the contract; returns every violation found.
pub async fn verify(
    store: &dyn Store,
    devices: &[Arc<Device>],
    sent: &[Sent],
    pairs: usize,
) -> anyhow::Result<Vec<String>> {
    let mut violations = Vec::new();
    for pair in 0..pairs {
        let conversation = format!("chaos-{pair}");
        let mut stored = Vec::new();
        loop {
            let page = store
                .messages_since(conversation.clone(), stored.len() as u64, 1000)
                .await?;
            if page.is_empty() {
                break;
            }
            stored.extend(page);
        }
        // Gap-free, each id once.
        for (index, message) in stored.iter().enumerate() {
            if message.seq != index as u64 + 1 {
                violations.push(format!(
                    "{conversation}: seq {} at position {}",
                    message.seq,
                    index + 1
                ));
                break;
            }
        }
        let ids: HashSet<&str> = stored.iter().map(|m| m.id.as_str()).collect();
        if ids.len() != stored.len() {
            violations.push(format!("{conversation}: a message id is stored twice"));
        }
        // Every message that entered an outbox is stored exactly once; nothing else is stored.
        let expected: Vec<&Sent> = sent
            .iter()
            .filter(|s| s.conversation == conversation)
            .collect();
        for s in &expected {
            match stored.iter().filter(|m| m.id == s.id).count() {
                1 => {}
                n => violations.push(format!(
                    "{conversation}: {} #{} ({}) stored {n} times",
                    s.sender, s.n, s.id
                )),
            }
        }
        let known: HashSet<&str> = expected.iter().map(|s| s.id.as_str()).collect();
        for m in &stored {
            if !known.contains(m.id.as_str()) {
                violations.push(format!(
                    "{conversation}: stored message {} never entered an outbox",
                    m.id
                ));
            }
        }
        violations.extend(fifo_violations(&conversation, &expected, &stored));
        // Every attachment as stored: the files sent, in order, with their hashes.
        let files: HashMap<&str, &Sent> = expected.iter().map(|s| (s.id.as_str(), *s)).collect();
        for m in &stored {
            if let Some(s) = files.get(m.id.as_str()) {
                if let Some(difference) = attachments_differ(&m.attachments, &s.files) {
                    violations.push(format!(
                        "{conversation}: {} #{} stored with attachments {difference}",
                        s.sender, s.n
                    ));
                }
            }
        }
        // Every device holds exactly the stored sequence.
        for device in devices.iter().filter(|d| d.conversation == conversation) {
            let client = device.client.lock().await.clone();
            let held: Vec<String> = client
                .messages(&conversation)
                .await?
                .into_iter()
                .filter(|m| m.seq.is_some())
                .map(|m| m.id)
                .collect();
            let want: Vec<String> = stored.iter().map(|m| m.id.clone()).collect();
            if held != want {
                violations.push(format!(
                    "{}: holds {} messages, storage has {} (first difference at {})",
                    device.user,
                    held.len(),
                    want.len(),
                    held.iter()
                        .zip(&want)
                        .position(|(a, b)| a != b)
                        .unwrap_or(held.len().min(want.len()))
                        + 1
                ));
            }
        }
    }
    Ok(violations)
}

/// Most FIFO violations reported per conversation; the count of the others follows them.
const FIFO_REPORTED_MAX: usize = 10;

/// FIFO per sender: for any two messages A before B of one device's outbox in one conversation,
/// if both are stored then `seq(A) < seq(B)`. Walking the stored messages in `seq` order, each
/// sender's outbox positions must rise; a stored message whose position is below the highest of
/// its sender already seen is reported with both. Every inverted pair shows up this way (if B was
/// stored before A, then when A comes, the highest seen is at least B's position).
fn fifo_violations(conversation: &str, sent: &[&Sent], stored: &[StoredMessage]) -> Vec<String> {
    let outbox: HashMap<&str, &Sent> = sent.iter().map(|s| (s.id.as_str(), *s)).collect();
    // Per sender: the highest outbox position stored so far, and its seq.
    let mut highest: HashMap<&str, (u64, u64)> = HashMap::new();
    let mut found = Vec::new();
    for message in stored {
        let Some(s) = outbox.get(message.id.as_str()) else {
            continue; // reported as never having entered an outbox
        };
        let entry = highest.entry(s.sender.as_str()).or_insert((0, 0));
        if s.n < entry.0 {
            found.push(format!(
                "{conversation}: FIFO broken for {}: outbox position {} stored at seq {} after position {} at seq {}",
                s.sender, s.n, message.seq, entry.0, entry.1
            ));
        } else {
            *entry = (s.n, message.seq);
        }
    }
    if found.len() > FIFO_REPORTED_MAX {
        let more = found.len() - FIFO_REPORTED_MAX;
        found.truncate(FIFO_REPORTED_MAX);
        found.push(format!(
            "{conversation}: FIFO broken for {more} more message(s)"
        ));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(sender: &str, n: u64) -> Sent {
        Sent {
            id: format!("{sender}-{n}"),
            conversation: "c".into(),
            sender: sender.into(),
            n,
            files: Vec::new(),
        }
    }

    fn stored(order: &[(&str, u64)]) -> Vec<StoredMessage> {
        order
            .iter()
            .enumerate()
            .map(|(index, (sender, n))| StoredMessage {
                id: format!("{sender}-{n}"),
                conversation: "c".into(),
                seq: index as u64 + 1,
                sender: (*sender).into(),
                role: protocol::Role::Client,
                body: String::new(),
                ts: 0,
                kind: Default::default(),
                data: None,
                attachments: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn fifo_holds_when_each_senders_positions_rise_with_gaps_and_interleaving() {
        let all: Vec<Sent> = (1..=5).flat_map(|n| [sent("a", n), sent("b", n)]).collect();
        let refs: Vec<&Sent> = all.iter().collect();
        // b #2 and a #3 never stored (another check reports that): no FIFO violation.
        let order = [
            ("a", 1),
            ("b", 1),
            ("a", 2),
            ("b", 3),
            ("a", 4),
            ("b", 4),
            ("a", 5),
        ];
        assert!(fifo_violations("c", &refs, &stored(&order)).is_empty());
    }

    #[test]
    fn fifo_reports_a_message_stored_after_a_later_one_of_its_sender() {
        let all: Vec<Sent> = (30..=40).map(|n| sent("a", n)).collect();
        let refs: Vec<&Sent> = all.iter().collect();
        // The bug: 36 got ahead of the refused 35, which was stored later.
        let order = [("a", 34), ("a", 36), ("a", 37), ("a", 35), ("a", 38)];
        let found = fifo_violations("c", &refs, &stored(&order));
        assert_eq!(
            found,
            vec!["c: FIFO broken for a: outbox position 35 stored at seq 4 after position 37 at seq 3"]
        );
    }

    #[test]
    fn attachments_must_be_the_files_sent_in_order() {
        let file = |name: &str, bytes: &[u8]| SentFile {
            name: name.into(),
            size: bytes.len() as u64,
            sha256: sha256(bytes),
        };
        let held = |name: &str, bytes: &[u8]| Attachment {
            id: "00000000-0000-4000-8000-000000000001".into(),
            name: name.into(),
            content_type: "application/pdf".into(),
            size: bytes.len() as u64,
            sha256: sha256(bytes),
            width: None,
            height: None,
            thumb: false,
        };
        let sent = [file("a.pdf", b"%PDF-a"), file("b.pdf", b"%PDF-b")];
        let same = [held("a.pdf", b"%PDF-a"), held("b.pdf", b"%PDF-b")];
        assert_eq!(attachments_differ(&same, &sent), None);
        assert!(attachments_differ(&[same[1].clone(), same[0].clone()], &sent).is_some());
        assert!(attachments_differ(&same[..1], &sent).is_some());
        assert!(attachments_differ(&[held("a.pdf", b"%PDF-x"), same[1].clone()], &sent).is_some());
        assert!(attachments_differ(&[], &[]).is_none());
    }
}
