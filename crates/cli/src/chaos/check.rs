//! The chaos run's checker: convergence, then the delivery contract against storage.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use client::DeliveryStatus;
use server::store::Store;

use super::{Device, Sent};

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
        // FIFO per sender.
        let order: HashMap<&str, u64> = expected.iter().map(|s| (s.id.as_str(), s.n)).collect();
        let mut last: HashMap<&str, u64> = HashMap::new();
        for m in &stored {
            if let Some(n) = order.get(m.id.as_str()) {
                let previous = last.insert(m.sender.as_str(), *n).unwrap_or(0);
                if *n <= previous {
                    violations.push(format!(
                        "{conversation}: {} #{n} stored after #{previous}",
                        m.sender
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
