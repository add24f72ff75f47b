//! Sends and receipts: validation, the FIFO guard, the rate limit, receipt coalescing, and the
//! answers, in the order the frames came.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use protocol::frames::{self, ErrorFrame, ServerFrame};
use protocol::ErrorCode;

use super::fifo::{Admission, Answer, Fifo};
use super::{Core, Metric, Output};
use crate::error::store_error_frame;
use crate::store::{AppendRequest, Appended, ReceiptOutcome, ReceiptRequest, StoreError};

/// What the store answered for a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// The outcome of an `Append`.
    Appended(Result<Appended, StoreError>),
    /// The outcome of a `Receipt`.
    Receipt(Result<ReceiptOutcome, StoreError>),
}

/// A request waiting for its answer, in the order the device sent them.
#[derive(Debug)]
struct Slot {
    ticket: u64,
    kind: SlotKind,
    outcome: Option<StoreOutcome>,
}

#[derive(Debug)]
enum SlotKind {
    /// A send taken for storing.
    Send {
        conversation: String,
        id: String,
        started: Instant,
    },
    /// A send refused before storing, answered in its turn.
    Refused {
        conversation: String,
        id: String,
        frame: ErrorFrame,
        /// Whether it was taken (a rate-limit refusal is, and so is answered to the FIFO guard);
        /// a send refused by the guard itself was not.
        taken: bool,
    },
    /// A receipt being stored.
    Receipt {
        reference: Option<String>,
        /// The conversation, for a receipt that others may have been coalesced behind.
        coalesced: Option<String>,
    },
}

/// Cumulative receipts of one conversation that arrived while an earlier one of it was being
/// stored: only their maximum is stored next. A device sends one per message it stores, so under
/// load this turns many writes (and as many pushed `receipt` frames) into one per commit.
#[derive(Debug, Default)]
struct Coalesced {
    delivered: Option<u64>,
    read: Option<u64>,
    /// Whether any receipt is waiting.
    waiting: bool,
}

/// The send side of a connection.
#[derive(Debug, Default)]
pub(super) struct Sends {
    pub(super) fifo: Fifo,
    answers: VecDeque<Slot>,
    next_ticket: u64,
    /// Per conversation with a receipt (without `ref`) being stored: the ones that came since.
    receipts: HashMap<String, Coalesced>,
    /// Store requests submitted and not answered.
    submitted: usize,
}

impl Sends {
    /// Store requests submitted and not yet answered.
    pub(super) fn in_flight(&self) -> usize {
        self.submitted
    }

    fn ticket(&mut self) -> u64 {
        self.next_ticket += 1;
        self.next_ticket
    }

    fn push(&mut self, kind: SlotKind, outcome: Option<StoreOutcome>) -> u64 {
        let ticket = self.ticket();
        if outcome.is_none() {
            self.submitted += 1;
        }
        self.answers.push_back(Slot {
            ticket,
            kind,
            outcome,
        });
        ticket
    }
}

impl Core {
    pub(super) fn send(&mut self, now: Instant, send: frames::Send) {
        let reference = Some(send.id.clone());
        let (id, attachments) = match crate::validate::message(
            &self.config,
            &send.id,
            &send.conversation,
            &send.body,
            &send.attachments,
        ) {
            Ok(checked) => checked,
            // Permanently bad: never a predecessor or a blocker, so it holds up nothing.
            Err((code, message)) => {
                return self.reject(now, ErrorFrame::new(code, message, reference))
            }
        };
        // From here on, answers name the message by its canonical id, as acks do.
        let conversation = send.conversation;
        let after = match self.sends.fifo.admit(&conversation, &id) {
            Admission::Refuse { blocker } => {
                let message = format!(
                    "message {blocker} of this conversation was not stored; resend it first"
                );
                // Not a bad frame: a device pipelining many sends gets one of these for each send
                // behind a failed one, legitimately.
                let frame = ErrorFrame::new(ErrorCode::OutOfOrder, message, Some(id.clone()));
                let kind = SlotKind::Refused {
                    conversation,
                    id,
                    frame,
                    taken: false,
                };
                self.sends.push(kind, Some(refused()));
                return self.answer_ready(now);
            }
            Admission::Take { after } => after,
        };
        if let Err(wait) = self.send_budget.take(&self.user_id, now) {
            let mut frame = ErrorFrame::new(
                ErrorCode::RateLimited,
                "too many sends; retry later",
                Some(id.clone()),
            );
            frame.retry_after_ms = Some(wait.as_millis() as u64 + 1);
            // Taken (so the sends behind it chain on it and fail with it) but answered in its
            // turn: it becomes the blocker only after the answers of the sends before it, one of
            // which may fail and must stay the first to resend.
            let kind = SlotKind::Refused {
                conversation,
                id,
                frame,
                taken: true,
            };
            self.sends.push(kind, Some(refused()));
            return self.answer_ready(now);
        }
        let request = AppendRequest {
            conversation: conversation.clone(),
            id: id.clone(),
            sender: self.user_id.clone(),
            role: self.role,
            body: send.body,
            ts: crate::now_ms(),
            after,
            kind: send.kind,
            attachments,
        };
        let kind = SlotKind::Send {
            conversation,
            id,
            started: now,
        };
        let ticket = self.sends.push(kind, None);
        self.outputs.push_back(Output::Append { ticket, request });
    }

    pub(super) fn receipt(&mut self, now: Instant, receipt: frames::ReceiptUpdate) {
        if !self.conversations.contains_key(&receipt.conversation) {
            let frame = ErrorFrame::new(
                ErrorCode::NotFound,
                "no such conversation",
                receipt.reference,
            );
            return self.reject(now, frame);
        }
        // A receipt with a `ref` is answered on its own; others are cumulative and may merge.
        if receipt.reference.is_none() {
            if let Some(waiting) = self.sends.receipts.get_mut(&receipt.conversation) {
                waiting.delivered = waiting.delivered.max(receipt.delivered);
                waiting.read = waiting.read.max(receipt.read);
                waiting.waiting = true;
                return;
            }
            self.sends
                .receipts
                .insert(receipt.conversation.clone(), Coalesced::default());
        }
        self.submit_receipt(receipt);
    }

    fn submit_receipt(&mut self, receipt: frames::ReceiptUpdate) {
        let coalesced = receipt
            .reference
            .is_none()
            .then(|| receipt.conversation.clone());
        let request = ReceiptRequest {
            conversation: receipt.conversation,
            user_id: self.user_id.clone(),
            role: self.role,
            delivered: receipt.delivered,
            read: receipt.read,
        };
        let kind = SlotKind::Receipt {
            reference: receipt.reference,
            coalesced,
        };
        let ticket = self.sends.push(kind, None);
        self.outputs.push_back(Output::Receipt { ticket, request });
    }

    /// The store answered `ticket`. Answers go out once every earlier one is out.
    pub fn handle_stored(&mut self, now: Instant, ticket: u64, outcome: StoreOutcome) {
        let Some(slot) = self.sends.answers.iter_mut().find(|s| s.ticket == ticket) else {
            debug_assert!(false, "an answer for an unknown ticket {ticket}");
            return;
        };
        debug_assert!(slot.outcome.is_none(), "ticket {ticket} answered twice");
        slot.outcome = Some(outcome);
        self.sends.submitted -= 1;
        self.answer_ready(now);
        self.drained();
    }

    /// Answers every slot at the front of the queue whose outcome is known.
    fn answer_ready(&mut self, now: Instant) {
        while self
            .sends
            .answers
            .front()
            .is_some_and(|s| s.outcome.is_some())
        {
            let slot = self.sends.answers.pop_front().expect("checked above");
            let outcome = slot.outcome.expect("checked above");
            self.answer(now, slot.kind, outcome);
        }
    }

    fn answer(&mut self, now: Instant, kind: SlotKind, outcome: StoreOutcome) {
        match (kind, outcome) {
            (
                SlotKind::Send {
                    conversation,
                    id,
                    started,
                },
                StoreOutcome::Appended(result),
            ) => {
                let answer = match &result {
                    Err(err) if !err.code().is_permanent() => Answer::Retry,
                    _ => Answer::Settled,
                };
                self.sends.fifo.answered(&conversation, &id, answer);
                match result {
                    Ok(appended) => {
                        debug_assert_eq!(appended.message.id, id, "acked under another id");
                        let elapsed = now.saturating_duration_since(started);
                        let (metric, label) = if appended.created {
                            (Metric::Stored(elapsed), "stored")
                        } else {
                            (Metric::Repeated(elapsed), "duplicate")
                        };
                        self.outputs.push_back(Output::Metric(metric));
                        self.outputs.push_back(Output::Metric(Metric::Ack(label)));
                        let message = &appended.message;
                        self.send_frame(&ServerFrame::Ack(frames::Ack {
                            id: message.id.clone(),
                            conversation: message.conversation.clone(),
                            seq: message.seq,
                            ts: message.ts,
                        }));
                    }
                    Err(err) => {
                        self.outputs
                            .push_back(Output::Metric(Metric::Ack(err.code().as_str())));
                        self.send_frame(&ServerFrame::Error(store_error_frame(&err, Some(id))));
                    }
                }
            }
            (
                SlotKind::Refused {
                    conversation,
                    id,
                    frame,
                    taken,
                },
                _,
            ) => {
                if taken {
                    self.sends.fifo.answered(&conversation, &id, Answer::Retry);
                }
                self.outputs
                    .push_back(Output::Metric(Metric::Ack(frame.code.as_str())));
                self.send_frame(&ServerFrame::Error(frame));
            }
            (
                SlotKind::Receipt {
                    reference,
                    coalesced,
                },
                StoreOutcome::Receipt(result),
            ) => {
                if let Some(conversation) = coalesced {
                    self.receipt_stored(&conversation);
                }
                match result {
                    Ok(outcome) => {
                        if outcome.changed {
                            self.outputs.push_back(Output::Metric(Metric::Receipt));
                        }
                    }
                    Err(err) => {
                        self.send_frame(&ServerFrame::Error(store_error_frame(&err, reference)))
                    }
                }
            }
            (kind, outcome) => {
                debug_assert!(false, "outcome {outcome:?} does not answer {kind:?}");
            }
        }
    }

    /// A coalescing receipt of `conversation` was stored: submits what merged behind it.
    fn receipt_stored(&mut self, conversation: &str) {
        let closed = self.is_closed();
        match self.sends.receipts.get_mut(conversation) {
            Some(waiting) if waiting.waiting && !closed => {
                let next = std::mem::take(waiting);
                self.submit_receipt(frames::ReceiptUpdate {
                    reference: None,
                    conversation: conversation.to_owned(),
                    delivered: next.delivered,
                    read: next.read,
                });
            }
            _ => {
                self.sends.receipts.remove(conversation);
            }
        }
    }
}

/// The placeholder outcome of a slot refused before storing (its frame says why).
fn refused() -> StoreOutcome {
    StoreOutcome::Appended(Err(StoreError::OutOfOrder))
}
