//! The outbox: the user's messages not yet durable on the server, in creation order. Pure
//! bookkeeping; the driver persists it.

use std::time::Instant;

use super::files::{FileSlot, OutboxFile};
use super::types::DeliveryStatus;
use super::PendingMessage;

/// Where an outbox message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// Waiting to be sent (again).
    Queued,
    /// Sent on the current connection; no answer yet.
    InFlight,
    /// Refused for good, or past its deadline.
    Failed { code: String, message: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub conversation: String,
    pub body: String,
    pub deadline: Option<Instant>,
    pub state: EntryState,
    /// Transient refusals so far, for the resend backoff.
    pub attempts: u32,
    /// Not to be resent before this time.
    pub not_before: Option<Instant>,
    /// Its files, in the order they are shown; it is not sent before all are uploaded.
    pub files: Vec<FileSlot>,
}

impl Entry {
    /// Whether a file of it is not uploaded yet (then it, and what follows it in its
    /// conversation, waits).
    pub(crate) fn awaits_files(&self) -> bool {
        self.files.iter().any(|f| !f.is_done())
    }

    pub(crate) fn is_failed(&self) -> bool {
        matches!(self.state, EntryState::Failed { .. })
    }

    pub(crate) fn status(&self) -> DeliveryStatus {
        match &self.state {
            EntryState::Failed { code, message } => DeliveryStatus::Failed {
                code: code.clone(),
                message: message.clone(),
            },
            _ => DeliveryStatus::Sending,
        }
    }
}

/// A message to write now.
pub(crate) struct Sendable {
    pub id: String,
    pub conversation: String,
    pub body: String,
    /// Upload ids of its files, all complete.
    pub attachments: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    entries: Vec<Entry>,
}

impl Outbox {
    pub(crate) fn push(
        &mut self,
        id: String,
        conversation: String,
        body: String,
        files: Vec<OutboxFile>,
        deadline: Option<Instant>,
    ) {
        if self.get(&id).is_some() {
            return;
        }
        self.entries.push(Entry {
            id,
            conversation,
            body,
            deadline,
            state: EntryState::Queued,
            attempts: 0,
            not_before: None,
            files: files
                .into_iter()
                .map(|file| FileSlot::new(file, false))
                .collect(),
        });
    }

    pub(crate) fn restore(&mut self, pending: PendingMessage) {
        let state = match pending.failed {
            Some((code, message)) => EntryState::Failed { code, message },
            None => EntryState::Queued,
        };
        self.entries.push(Entry {
            id: pending.id,
            conversation: pending.conversation,
            body: pending.body,
            deadline: None,
            state,
            attempts: 0,
            not_before: None,
            // A previous run may have created (even finished) the uploads: ask first.
            files: pending
                .files
                .into_iter()
                .map(|file| FileSlot::new(file, true))
                .collect(),
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn failed_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.state, EntryState::Failed { .. }))
            .count()
    }

    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Whether an earlier message of the same conversation is still pending (not failed): then
    /// an `out_of_order` refusal of `id` is only a consequence of that one's.
    pub(crate) fn behind_another(&self, id: &str) -> bool {
        let Some(at) = self.entries.iter().position(|e| e.id == id) else {
            return false;
        };
        let conversation = &self.entries[at].conversation;
        self.entries[..at].iter().any(|e| {
            &e.conversation == conversation && !matches!(e.state, EntryState::Failed { .. })
        })
    }

    pub(crate) fn entries_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.entries.iter_mut()
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    /// Removes a message that is now durable on the server.
    pub(crate) fn take(&mut self, id: &str) -> Option<Entry> {
        let index = self.entries.iter().position(|e| e.id == id)?;
        Some(self.entries.remove(index))
    }

    pub(crate) fn retry_failed(&mut self) -> Vec<(String, String)> {
        let mut retried = Vec::new();
        for entry in &mut self.entries {
            if matches!(entry.state, EntryState::Failed { .. }) {
                entry.state = EntryState::Queued;
                entry.attempts = 0;
                entry.not_before = None;
                entry.deadline = None;
                for file in entry.files.iter_mut().filter(|f| !f.is_done()) {
                    file.again();
                }
                retried.push((entry.conversation.clone(), entry.id.clone()));
            }
        }
        retried
    }

    /// Marks a message failed for good; returns its conversation.
    pub(crate) fn fail(&mut self, id: &str, code: &str, message: &str) -> String {
        let entry = self
            .get_mut(id)
            .expect("failing a message that is in the outbox");
        entry.state = EntryState::Failed {
            code: code.to_owned(),
            message: message.to_owned(),
        };
        entry.conversation.clone()
    }

    /// A transient refusal: queue again, not before `at`.
    pub(crate) fn retry_later(&mut self, id: &str, at: Instant) {
        if let Some(entry) = self.get_mut(id) {
            entry.state = EntryState::Queued;
            entry.attempts = entry.attempts.saturating_add(1);
            entry.not_before = Some(at);
        }
    }

    /// The connection is gone: what was in flight is queued again (same ids).
    pub(crate) fn requeue_in_flight(&mut self) {
        for entry in &mut self.entries {
            if entry.state.is_in_flight() {
                entry.state = EntryState::Queued;
            }
        }
    }

    /// Fails queued messages whose deadline has passed. Each failed one comes with whether it had
    /// been refused before (`attempts > 0`).
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(String, String, DeliveryStatus, bool)> {
        let mut failed = Vec::new();
        for entry in &mut self.entries {
            if entry.state == EntryState::Queued && entry.deadline.is_some_and(|d| d <= now) {
                entry.state = EntryState::Failed {
                    code: "deadline_exceeded".into(),
                    message: "not stored on the server before its deadline".into(),
                };
                failed.push((
                    entry.conversation.clone(),
                    entry.id.clone(),
                    entry.status(),
                    entry.attempts > 0,
                ));
            }
        }
        failed
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.entries
            .iter()
            .filter(|e| e.state == EntryState::Queued)
            .filter_map(|e| e.deadline)
            .min()
    }

    /// When a queued message can go next: per conversation only its first queued message counts
    /// (the others wait behind it), and a conversation still waiting for answers to later messages
    /// needs no timer (those answers wake it).
    pub(crate) fn next_resend(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut seen: Vec<&str> = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.state != EntryState::Queued || seen.contains(&entry.conversation.as_str()) {
                continue;
            }
            seen.push(&entry.conversation);
            let waiting_on_answers = self.entries[index..].iter().any(|later| {
                later.conversation == entry.conversation && later.state.is_in_flight()
            });
            // One waiting for its files is woken by their uploads, not by a timer.
            if let (Some(at), false) =
                (entry.not_before, waiting_on_answers || entry.awaits_files())
            {
                earliest = Some(earliest.map_or(at, |e| e.min(at)));
            }
        }
        earliest
    }

    /// Picks what to send now and marks it in flight. Per conversation, in creation order:
    /// nothing is sent while a later message of the conversation is still in flight behind a
    /// queued one (its answer — an `out_of_order` refusal — must come back first), and sending
    /// stops at the first queued message that must wait — for its resend time, or for its files
    /// to be uploaded. Failed messages do not hold others up.
    pub(crate) fn sendable(&mut self, now: Instant, window: usize) -> Vec<Sendable> {
        let mut room = window.saturating_sub(
            self.entries
                .iter()
                .filter(|e| e.state.is_in_flight())
                .count(),
        );
        let mut out = Vec::new();
        let mut conversations: Vec<String> = Vec::new();
        for entry in &self.entries {
            if !conversations.contains(&entry.conversation) {
                conversations.push(entry.conversation.clone());
            }
        }
        for conversation in conversations {
            if room == 0 {
                break;
            }
            let indices: Vec<usize> = (0..self.entries.len())
                .filter(|&i| {
                    self.entries[i].conversation == conversation
                        && !matches!(self.entries[i].state, EntryState::Failed { .. })
                })
                .collect();
            let Some(first_queued) = indices
                .iter()
                .position(|&i| self.entries[i].state == EntryState::Queued)
            else {
                continue;
            };
            if indices[first_queued..]
                .iter()
                .any(|&i| self.entries[i].state.is_in_flight())
            {
                continue;
            }
            for &i in &indices[first_queued..] {
                let entry = &mut self.entries[i];
                let waiting = entry.not_before.is_some_and(|at| at > now)
                    || entry.deadline.is_some_and(|d| d <= now)
                    || entry.awaits_files();
                if waiting || room == 0 {
                    break;
                }
                entry.state = EntryState::InFlight;
                entry.not_before = None;
                room -= 1;
                out.push(Sendable {
                    id: entry.id.clone(),
                    conversation: entry.conversation.clone(),
                    body: entry.body.clone(),
                    attachments: entry
                        .files
                        .iter()
                        .map(|f| f.file.upload_id.clone())
                        .collect(),
                });
            }
        }
        out
    }
}
