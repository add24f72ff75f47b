//! The in-memory store's [`AccountStore`]: the same rules as the SQL stores, on maps.

use std::collections::{BTreeMap, HashMap};

use super::MemoryStore;
use crate::store::accounts::{
    Account, AccountStore, AuditEntry, Failure, Session, LAST_SEEN_STEP_MS,
};
use crate::store::Pending;

#[derive(Default)]
pub(super) struct AccountState {
    /// By operator id.
    accounts: BTreeMap<String, Account>,
    /// By id.
    sessions: HashMap<String, Session>,
    /// Token hash → (operator, expires at, used at).
    resets: HashMap<String, (String, u64, Option<u64>)>,
    /// In id order; an entry's id is its position plus one.
    audit: Vec<AuditEntry>,
}

impl AccountStore for MemoryStore {
    fn put_account(&self, mut account: Account) -> Pending<bool> {
        let mut state = self.lock();
        let accounts = &mut state.accounts.accounts;
        account.email = account.email.to_lowercase();
        let taken = accounts
            .values()
            .any(|a| a.email == account.email && a.operator_id != account.operator_id);
        if !taken {
            accounts.insert(account.operator_id.clone(), account);
        }
        Self::ready(Ok(!taken))
    }

    fn account(&self, operator_id: String) -> Pending<Option<Account>> {
        let state = self.lock();
        Self::ready(Ok(state.accounts.accounts.get(&operator_id).cloned()))
    }

    fn account_by_email(&self, email: String) -> Pending<Option<Account>> {
        let email = email.to_lowercase();
        let state = self.lock();
        let found = state.accounts.accounts.values().find(|a| a.email == email);
        Self::ready(Ok(found.cloned()))
    }

    fn accounts(&self) -> Pending<Vec<Account>> {
        let state = self.lock();
        Self::ready(Ok(state.accounts.accounts.values().cloned().collect()))
    }

    fn sign_in_failed(
        &self,
        operator_id: String,
        lock_after: u32,
        lock_ms: u64,
        now: u64,
    ) -> Pending<Failure> {
        let mut state = self.lock();
        let failure = match state.accounts.accounts.get_mut(&operator_id) {
            Some(account) => {
                account.failed_count = account.failed_count.saturating_add(1);
                if account.failed_count >= lock_after {
                    account.locked_until = now.saturating_add(lock_ms);
                }
                Failure {
                    failed_count: account.failed_count,
                    locked_until: account.locked_until,
                }
            }
            None => Failure {
                failed_count: 0,
                locked_until: 0,
            },
        };
        Self::ready(Ok(failure))
    }

    fn sign_in_succeeded(&self, operator_id: String, totp_step: Option<u64>) -> Pending<bool> {
        let mut state = self.lock();
        let Some(account) = state.accounts.accounts.get_mut(&operator_id) else {
            return Self::ready(Ok(false));
        };
        if let Some(step) = totp_step {
            if step <= account.totp_last_step {
                return Self::ready(Ok(false));
            }
            account.totp_last_step = step;
        }
        account.failed_count = 0;
        account.locked_until = 0;
        Self::ready(Ok(true))
    }

    fn create_session(&self, session: Session) -> Pending<()> {
        let mut state = self.lock();
        state.accounts.sessions.insert(session.id.clone(), session);
        Self::ready(Ok(()))
    }

    fn session(&self, id: String, now: u64) -> Pending<Option<Session>> {
        let mut state = self.lock();
        let found = match state.accounts.sessions.get_mut(&id) {
            Some(session) if session.expires_at > now => {
                if session.last_seen.saturating_add(LAST_SEEN_STEP_MS) < now {
                    session.last_seen = now;
                }
                Some(session.clone())
            }
            _ => None,
        };
        Self::ready(Ok(found))
    }

    fn sessions_of(&self, operator_id: String, now: u64) -> Pending<Vec<Session>> {
        let state = self.lock();
        let mut mine: Vec<Session> = state
            .accounts
            .sessions
            .values()
            .filter(|s| s.operator_id == operator_id && s.expires_at > now)
            .cloned()
            .collect();
        mine.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Self::ready(Ok(mine))
    }

    fn delete_session(&self, operator_id: Option<String>, id: String) -> Pending<bool> {
        let mut state = self.lock();
        let sessions = &mut state.accounts.sessions;
        let mine = sessions
            .get(&id)
            .is_some_and(|s| operator_id.as_ref().is_none_or(|o| *o == s.operator_id));
        if mine {
            sessions.remove(&id);
        }
        Self::ready(Ok(mine))
    }

    fn delete_sessions_of(&self, operator_id: String) -> Pending<u32> {
        let mut state = self.lock();
        let sessions = &mut state.accounts.sessions;
        let before = sessions.len();
        sessions.retain(|_, s| s.operator_id != operator_id);
        Self::ready(Ok((before - sessions.len()) as u32))
    }

    fn create_reset(
        &self,
        token_hash: String,
        operator_id: String,
        expires_at: u64,
    ) -> Pending<()> {
        let mut state = self.lock();
        state
            .accounts
            .resets
            .insert(token_hash, (operator_id, expires_at, None));
        Self::ready(Ok(()))
    }

    fn use_reset(&self, token_hash: String, now: u64) -> Pending<Option<String>> {
        let mut state = self.lock();
        let used = match state.accounts.resets.get_mut(&token_hash) {
            Some((operator_id, expires_at, used_at @ None)) if *expires_at > now => {
                *used_at = Some(now);
                Some(operator_id.clone())
            }
            _ => None,
        };
        Self::ready(Ok(used))
    }

    fn audit(&self, mut entry: AuditEntry) -> Pending<AuditEntry> {
        let mut state = self.lock();
        let log = &mut state.accounts.audit;
        entry.id = log.len() as u64 + 1;
        log.push(entry.clone());
        Self::ready(Ok(entry))
    }

    fn audit_since(&self, after: u64, limit: u32) -> Pending<Vec<AuditEntry>> {
        let state = self.lock();
        let page = state
            .accounts
            .audit
            .iter()
            .skip(usize::try_from(after).unwrap_or(usize::MAX))
            .take(limit as usize)
            .cloned()
            .collect();
        Self::ready(Ok(page))
    }
}
