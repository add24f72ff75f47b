//! Storage failures in the middle of pipelined sends: a `FaultyStore` in front of the memory
//! store fails chosen appends (as a broken disk or a lost database connection would, with nothing
//! stored), and the contract must hold — the failures are answered as transient, nothing sent
//! after a failed message is stored before it, and resending in order stores everything once, in
//! the order the device created it.

mod common;

use server::store::uploads::{
    Created, Decision, NewUpload, StorageUsage, Upload, UploadStore, Usage,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{ADMIN, SECRET};
use protocol::api::{ConversationSummary, ConversationView, ParticipantSpec};
use protocol::frames::{self, ClientFrame, ConversationState, ParticipantState, ServerFrame};
use protocol::{ErrorCode, Role};
use server::store::accounts::{Account, AccountStore, AuditEntry, Failure, Session};
use server::store::canned::{CannedReply, CannedStore, Saved};
use server::store::memory::MemoryStore;
use server::store::reach::{
    Delivery, Notice, PushSubscription, ReachFacts, ReachStore, Redeemed, Settled,
};
use server::store::search::{SearchQuery, SearchStore};
use server::store::{
    AppendRequest, Appended, CommitListener, ConversationChange, EventRecord, MessageStore,
    Pending, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage, Webhook, WorkflowStore,
};
use server::{AppState, Config};
use testkit::Device;
use tokio_util::sync::CancellationToken;

/// Fails the appends whose call numbers (from 0) are in `fail`; everything else goes through.
struct FaultyStore {
    inner: MemoryStore,
    calls: AtomicUsize,
    fail: HashSet<usize>,
}

impl MessageStore for FaultyStore {
    fn attach(&self, listener: Arc<dyn CommitListener>) {
        self.inner.attach(listener)
    }
    fn append(&self, request: AppendRequest) -> Pending<Appended> {
        if self
            .fail
            .contains(&self.calls.fetch_add(1, Ordering::SeqCst))
        {
            return Box::pin(std::future::ready(Err(StoreError::Unavailable(
                "injected".into(),
            ))));
        }
        self.inner.append(request)
    }
    fn record_receipt(&self, r: ReceiptRequest) -> Pending<ReceiptOutcome> {
        self.inner.record_receipt(r)
    }
    fn participant(&self, c: String, u: String) -> Pending<Option<ParticipantState>> {
        self.inner.participant(c, u)
    }
    fn conversation_states_of(&self, u: String) -> Pending<Vec<ConversationState>> {
        self.inner.conversation_states_of(u)
    }
    fn states(&self, ids: Vec<String>) -> Pending<Vec<ConversationState>> {
        self.inner.states(ids)
    }
    fn messages_since(&self, c: String, after: u64, limit: u32) -> Pending<Vec<StoredMessage>> {
        self.inner.messages_since(c, after, limit)
    }
    fn health(&self) -> Pending<()> {
        self.inner.health()
    }
}

impl WorkflowStore for FaultyStore {
    fn create_conversation(
        &self,
        id: String,
        p: Vec<ParticipantSpec>,
        max: usize,
        now: u64,
    ) -> Pending<(ConversationView, bool)> {
        self.inner.create_conversation(id, p, max, now)
    }
    fn add_participant(
        &self,
        c: String,
        p: ParticipantSpec,
        max: usize,
        now: u64,
    ) -> Pending<bool> {
        self.inner.add_participant(c, p, max, now)
    }
    fn remove_participant(&self, c: String, u: String) -> Pending<bool> {
        self.inner.remove_participant(c, u)
    }
    fn erase_conversation(&self, id: String) -> Pending<bool> {
        self.inner.erase_conversation(id)
    }
    fn conversation(&self, id: String) -> Pending<Option<ConversationView>> {
        self.inner.conversation(id)
    }
    fn conversations_of(&self, u: String) -> Pending<Vec<ConversationSummary>> {
        self.inner.conversations_of(u)
    }
    fn change_conversation(
        &self,
        id: String,
        change: ConversationChange,
        now: u64,
    ) -> Pending<ConversationView> {
        self.inner.change_conversation(id, change, now)
    }
    fn events_since(&self, after: u64, limit: u32) -> Pending<Vec<EventRecord>> {
        self.inner.events_since(after, limit)
    }
    fn flag_unread(&self, after: u64, older_than: u64, now: u64) -> Pending<u64> {
        self.inner.flag_unread(after, older_than, now)
    }
    fn conversation_ids(&self, limit: u32) -> Pending<Vec<String>> {
        self.inner.conversation_ids(limit)
    }
    fn webhooks(&self) -> Pending<Vec<Webhook>> {
        self.inner.webhooks()
    }
    fn create_webhook(&self, url: String, secret: String, now: u64) -> Pending<Webhook> {
        self.inner.create_webhook(url, secret, now)
    }
    fn update_webhook(&self, w: Webhook) -> Pending<()> {
        self.inner.update_webhook(w)
    }
    fn delete_webhook(&self, id: u64) -> Pending<bool> {
        self.inner.delete_webhook(id)
    }
    fn operators(&self) -> Pending<Vec<protocol::api::Operator>> {
        self.inner.operators()
    }
    fn operator(&self, id: String) -> Pending<Option<protocol::api::Operator>> {
        self.inner.operator(id)
    }
    fn put_operator(&self, operator: protocol::api::Operator) -> Pending<bool> {
        self.inner.put_operator(operator)
    }
    fn delete_operator(&self, id: String) -> Pending<bool> {
        self.inner.delete_operator(id)
    }
    fn lease(&self, name: String, holder: String, ttl_ms: u64, now: u64) -> Pending<bool> {
        self.inner.lease(name, holder, ttl_ms, now)
    }
    fn put_presence(&self, node: String, o: Vec<(String, bool)>, until: u64) -> Pending<()> {
        self.inner.put_presence(node, o, until)
    }
    fn presence(&self, now: u64) -> Pending<Vec<(String, bool)>> {
        self.inner.presence(now)
    }
    fn next_turn(&self, name: String) -> Pending<u64> {
        self.inner.next_turn(name)
    }

    fn revoke_tokens(&self, user_id: String, at: u64) -> Pending<()> {
        self.inner.revoke_tokens(user_id, at)
    }

    fn tokens_revoked_at(&self, user_id: String) -> Pending<Option<u64>> {
        self.inner.tokens_revoked_at(user_id)
    }
}

impl ReachStore for FaultyStore {
    fn put_push_subscription(&self, s: PushSubscription) -> Pending<(PushSubscription, bool)> {
        self.inner.put_push_subscription(s)
    }
    fn push_subscriptions(&self, u: String) -> Pending<Vec<PushSubscription>> {
        self.inner.push_subscriptions(u)
    }
    fn delete_push_subscription(&self, u: Option<String>, id: String) -> Pending<bool> {
        self.inner.delete_push_subscription(u, id)
    }
    fn put_contact(&self, u: String, email: String) -> Pending<()> {
        self.inner.put_contact(u, email)
    }
    fn unsubscribe(&self, u: String, now: u64) -> Pending<bool> {
        self.inner.unsubscribe(u, now)
    }
    fn reach_facts(&self) -> Pending<Vec<ReachFacts>> {
        self.inner.reach_facts()
    }
    fn reach_enqueue(&self, n: Vec<Notice>, now: u64) -> Pending<u32> {
        self.inner.reach_enqueue(n, now)
    }
    fn reach_due(&self, now: u64, limit: u32) -> Pending<Vec<Delivery>> {
        self.inner.reach_due(now, limit)
    }
    fn reach_settle(&self, d: Delivery, s: Settled, now: u64) -> Pending<()> {
        self.inner.reach_settle(d, s, now)
    }
    fn redeem_link(&self, id: String, now: u64) -> Pending<Redeemed> {
        self.inner.redeem_link(id, now)
    }
}

impl AccountStore for FaultyStore {
    fn put_account(&self, a: Account) -> Pending<bool> {
        self.inner.put_account(a)
    }
    fn account(&self, o: String) -> Pending<Option<Account>> {
        self.inner.account(o)
    }
    fn account_by_email(&self, email: String) -> Pending<Option<Account>> {
        self.inner.account_by_email(email)
    }
    fn accounts(&self) -> Pending<Vec<Account>> {
        self.inner.accounts()
    }
    fn sign_in_failed(&self, o: String, after: u32, ms: u64, now: u64) -> Pending<Failure> {
        self.inner.sign_in_failed(o, after, ms, now)
    }
    fn sign_in_succeeded(&self, o: String, step: Option<u64>) -> Pending<bool> {
        self.inner.sign_in_succeeded(o, step)
    }
    fn create_session(&self, s: Session) -> Pending<()> {
        self.inner.create_session(s)
    }
    fn session(&self, id: String, now: u64) -> Pending<Option<Session>> {
        self.inner.session(id, now)
    }
    fn sessions_of(&self, o: String, now: u64) -> Pending<Vec<Session>> {
        self.inner.sessions_of(o, now)
    }
    fn delete_session(&self, o: Option<String>, id: String) -> Pending<bool> {
        self.inner.delete_session(o, id)
    }
    fn delete_sessions_of(&self, o: String) -> Pending<u32> {
        self.inner.delete_sessions_of(o)
    }
    fn create_reset(&self, hash: String, o: String, expires_at: u64) -> Pending<()> {
        self.inner.create_reset(hash, o, expires_at)
    }
    fn use_reset(&self, hash: String, now: u64) -> Pending<Option<String>> {
        self.inner.use_reset(hash, now)
    }
    fn audit(&self, e: AuditEntry) -> Pending<AuditEntry> {
        self.inner.audit(e)
    }
    fn audit_since(&self, after: u64, limit: u32) -> Pending<Vec<AuditEntry>> {
        self.inner.audit_since(after, limit)
    }
}

impl CannedStore for FaultyStore {
    fn canned_replies(&self) -> Pending<Vec<CannedReply>> {
        self.inner.canned_replies()
    }
    fn create_canned(&self, r: CannedReply) -> Pending<Saved> {
        self.inner.create_canned(r)
    }
    fn update_canned(&self, r: CannedReply) -> Pending<Saved> {
        self.inner.update_canned(r)
    }
    fn delete_canned(&self, id: String) -> Pending<bool> {
        self.inner.delete_canned(id)
    }
}

impl SearchStore for FaultyStore {
    fn search(&self, query: SearchQuery) -> Pending<Vec<StoredMessage>> {
        self.inner.search(query)
    }
}

impl UploadStore for FaultyStore {
    fn create_upload(&self, new: NewUpload) -> Pending<Created> {
        self.inner.create_upload(new)
    }
    fn upload(&self, id: String) -> Pending<Option<Upload>> {
        self.inner.upload(id)
    }
    fn write_chunk(&self, id: String, offset: u64, bytes: bytes::Bytes) -> Pending<Upload> {
        self.inner.write_chunk(id, offset, bytes)
    }
    fn upload_content(&self, id: String) -> Pending<Vec<u8>> {
        self.inner.upload_content(id)
    }
    fn upload_range(&self, id: String, start: u64, end: u64) -> Pending<Vec<u8>> {
        self.inner.upload_range(id, start, end)
    }
    fn decide_upload(&self, id: String, decision: Decision) -> Pending<Upload> {
        self.inner.decide_upload(id, decision)
    }
    fn upload_thumb(&self, id: String) -> Pending<Option<Vec<u8>>> {
        self.inner.upload_thumb(id)
    }
    fn delete_upload(&self, id: String) -> Pending<bool> {
        self.inner.delete_upload(id)
    }
    fn expire_uploads(&self, before: u64) -> Pending<u64> {
        self.inner.expire_uploads(before)
    }
    fn upload_usage(&self, user: String, minute_start: u64, day_start: u64) -> Pending<Usage> {
        self.inner.upload_usage(user, minute_start, day_start)
    }
    fn naming_kinds(&self, upload: String) -> Pending<Vec<protocol::frames::MessageKind>> {
        self.inner.naming_kinds(upload)
    }
    fn storage_usage(&self) -> Pending<StorageUsage> {
        self.inner.storage_usage()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_appends_are_transient_and_never_overtaken() {
    let store = Arc::new(FaultyStore {
        inner: MemoryStore::new(),
        calls: AtomicUsize::new(0),
        fail: HashSet::from([10, 11, 25]),
    });
    let config = Config {
        admin_key: Some(ADMIN.into()),
        jwt_secret: Some(SECRET.into()),
        sends_per_second_max: 10_000,
        sends_burst_max: 10_000,
        ..Config::default()
    };
    let state = AppState::new(config, store.clone(), CancellationToken::new());
    let participants = vec![ParticipantSpec {
        user_id: "ana".into(),
        role: Role::Client,
        email: None,
    }];
    state
        .store
        .create_conversation("b1".into(), participants, 8, 0)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/ws", listener.local_addr().unwrap());
    tokio::spawn(server::run(listener, state.clone()));
    let token = state.auth.mint("ana", Role::Client, server::now_s(), 3600);
    let mut ana = Device::connect(&url, &token, vec![]).await;

    // 40 messages, pipelined, in creation order; resend from the first unstored one, in order,
    // until all are stored — as a device's outbox does.
    let ids: Vec<String> = (0..40).map(|_| testkit::uuid()).collect();
    let mut from = 0;
    for round in 0..10 {
        for (i, id) in ids.iter().enumerate().skip(from) {
            let send = frames::Send {
                id: id.clone(),
                conversation: "b1".into(),
                body: format!("m{i}"),
                kind: Default::default(),
                attachments: Vec::new(),
            };
            ana.send(&ClientFrame::Send(send)).await;
        }
        let mut acked = HashSet::new();
        let mut first_failure = None;
        for _ in from..ids.len() {
            match ana
                .wait_for("an answer", |f| {
                    matches!(f, ServerFrame::Ack(_) | ServerFrame::Error(_)).then(|| f.clone())
                })
                .await
            {
                ServerFrame::Ack(ack) => {
                    acked.insert(ack.id);
                }
                ServerFrame::Error(err) => {
                    assert!(!err.permanent, "storage failures are transient: {err:?}");
                    assert!(
                        matches!(err.code, ErrorCode::Unavailable | ErrorCode::OutOfOrder),
                        "{err:?}"
                    );
                    let at = ids
                        .iter()
                        .position(|id| Some(id) == err.reference.as_ref())
                        .unwrap();
                    first_failure = Some(first_failure.map_or(at, |f: usize| f.min(at)));
                }
                _ => unreachable!(),
            }
        }
        match first_failure {
            None => break,
            Some(at) => {
                // Nothing after the first failure was stored ahead of it.
                assert!(
                    ids[at..].iter().all(|id| !acked.contains(id)),
                    "round {round}: a later message overtook {at}"
                );
                from = at;
            }
        }
    }
    let stored = state
        .store
        .messages_since("b1".into(), 0, 100)
        .await
        .unwrap();
    let order: Vec<&String> = stored.iter().map(|m| &m.id).collect();
    assert_eq!(
        order,
        ids.iter().collect::<Vec<_>>(),
        "every message once, in creation order"
    );
    assert!(
        store.calls.load(Ordering::SeqCst) > 40,
        "the faults were hit"
    );
}
