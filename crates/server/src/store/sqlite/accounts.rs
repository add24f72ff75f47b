//! [`AccountStore`] on SQLite: reads on the reader pool, writes through the one writer (so they
//! are ordered with everything else and durable when they answer). Each decision that must be
//! atomic (a taken email, a lockout, a TOTP step, a reset token) is read and written inside one
//! writer job, where nothing else writes between the two.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::read::corrupt;
use super::{submit_to, SqliteStore};
use crate::store::accounts::{
    Account, AccountRole, AccountStore, AuditEntry, Failure, Session, LAST_SEEN_STEP_MS,
};
use crate::store::decode::{self, Corrupt};
use crate::store::{Pending, StoreError};

const ACCOUNT_COLUMNS: &str = "operator_id, email, role, password_hash, totp_secret, \
                               totp_enabled, totp_last_step, failed_count, locked_until, \
                               created_at";
const SESSION_COLUMNS: &str =
    "id, operator_id, csrf_token, created_at, last_seen, expires_at, user_agent, method";
const AUDIT_COLUMNS: &str = "id, at, actor, action, target, detail, ip";

fn account(row: &Row<'_>) -> rusqlite::Result<Account> {
    let role: String = row.get(2)?;
    Ok(Account {
        operator_id: row.get(0)?,
        email: row.get(1)?,
        role: AccountRole::parse(&role)
            .ok_or_else(|| corrupt(2, Corrupt(format!("unknown account role {role:?}"))))?,
        password_hash: row.get(3)?,
        totp_secret: row.get(4)?,
        totp_enabled: row.get(5)?,
        totp_last_step: row.get(6)?,
        failed_count: row.get(7)?,
        locked_until: row.get(8)?,
        created_at: row.get(9)?,
    })
}

fn session(row: &Row<'_>) -> rusqlite::Result<Session> {
    Ok(Session {
        id: row.get(0)?,
        operator_id: row.get(1)?,
        csrf_token: row.get(2)?,
        created_at: row.get(3)?,
        last_seen: row.get(4)?,
        expires_at: row.get(5)?,
        user_agent: row.get(6)?,
        method: row.get(7)?,
    })
}

fn audit_entry(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let detail: String = row.get(5)?;
    Ok(AuditEntry {
        id: row.get(0)?,
        at: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        detail: decode::json(&detail).map_err(|err| corrupt(5, err))?,
        ip: row.get(6)?,
    })
}

fn put_account(tx: &Transaction<'_>, a: &Account) -> rusqlite::Result<bool> {
    // Checked first rather than left to the UNIQUE constraint: a constraint error would fail the
    // job as a storage failure, when a taken email is an answer.
    let taken = tx
        .query_row(
            "SELECT 1 FROM accounts WHERE email = ?1 AND operator_id <> ?2",
            params![a.email, a.operator_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if taken {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO accounts (operator_id, email, role, password_hash, totp_secret, totp_enabled,
             totp_last_step, failed_count, locked_until, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (operator_id) DO UPDATE SET email = excluded.email, role = excluded.role,
             password_hash = excluded.password_hash, totp_secret = excluded.totp_secret,
             totp_enabled = excluded.totp_enabled, totp_last_step = excluded.totp_last_step,
             failed_count = excluded.failed_count, locked_until = excluded.locked_until,
             created_at = excluded.created_at",
        params![
            a.operator_id,
            a.email,
            a.role.as_str(),
            a.password_hash,
            a.totp_secret,
            a.totp_enabled,
            a.totp_last_step,
            a.failed_count,
            a.locked_until,
            a.created_at
        ],
    )?;
    Ok(true)
}

impl AccountStore for SqliteStore {
    fn put_account(&self, mut account: Account) -> Pending<bool> {
        account.email = account.email.to_lowercase();
        self.submit(move |tx, _| Ok(Ok(put_account(tx, &account)?)))
    }

    fn account(&self, operator_id: String) -> Pending<Option<Account>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE operator_id = ?1"
            ))?
            .query_row([operator_id], account)
            .optional()
        })
    }

    fn account_by_email(&self, email: String) -> Pending<Option<Account>> {
        let email = email.to_lowercase();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = ?1"
            ))?
            .query_row([email], account)
            .optional()
        })
    }

    fn accounts(&self) -> Pending<Vec<Account>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY operator_id"
            ))?
            .query_map([], account)?
            .collect()
        })
    }

    fn sign_in_failed(
        &self,
        operator_id: String,
        lock_after: u32,
        lock_ms: u64,
        now: u64,
    ) -> Pending<Failure> {
        let locked_until = now.saturating_add(lock_ms);
        self.submit(move |tx, _| {
            let failure = tx
                .query_row(
                    "UPDATE accounts SET failed_count = failed_count + 1,
                         locked_until = CASE WHEN failed_count + 1 >= ?2 THEN ?3
                                             ELSE locked_until END
                     WHERE operator_id = ?1
                     RETURNING failed_count, locked_until",
                    params![operator_id, lock_after, locked_until],
                    |row| {
                        Ok(Failure {
                            failed_count: row.get(0)?,
                            locked_until: row.get(1)?,
                        })
                    },
                )
                .optional()?;
            Ok(Ok(failure.unwrap_or(Failure {
                failed_count: 0,
                locked_until: 0,
            })))
        })
    }

    fn sign_in_succeeded(&self, operator_id: String, totp_step: Option<u64>) -> Pending<bool> {
        self.submit(move |tx, _| {
            let changed = tx.execute(
                "UPDATE accounts SET failed_count = 0, locked_until = 0,
                     totp_last_step = COALESCE(?2, totp_last_step)
                 WHERE operator_id = ?1 AND (?2 IS NULL OR totp_last_step < ?2)",
                params![operator_id, totp_step],
            )?;
            Ok(Ok(changed > 0))
        })
    }

    fn create_session(&self, s: Session) -> Pending<()> {
        self.submit(move |tx, _| {
            tx.execute(
                &format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    s.id,
                    s.operator_id,
                    s.csrf_token,
                    s.created_at,
                    s.last_seen,
                    s.expires_at,
                    s.user_agent,
                    s.method
                ],
            )?;
            Ok(Ok(()))
        })
    }

    fn session(&self, id: String, now: u64) -> Pending<Option<Session>> {
        // Read on the pool; only a session whose `last_seen` is over a minute old costs a write.
        let writer = self.writer.clone();
        let stats = self.stats.clone();
        let found = self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND expires_at > ?2"
            ))?
            .query_row(params![id, now], session)
            .optional()
        });
        Box::pin(async move {
            let Some(mut found) = found.await? else {
                return Ok(None);
            };
            if found.last_seen.saturating_add(LAST_SEEN_STEP_MS) >= now {
                return Ok(Some(found));
            }
            let id = found.id.clone();
            let touched = submit_to(&writer, &stats, move |tx, _| {
                // Never moves back, should two lookups race.
                tx.execute(
                    "UPDATE sessions SET last_seen = ?2 WHERE id = ?1 AND last_seen < ?2",
                    params![id, now],
                )?;
                Ok(Ok::<_, StoreError>(()))
            })
            .await;
            match touched {
                Ok(()) => found.last_seen = now,
                // Bookkeeping: the session is valid whether or not this write went through.
                Err(err) => tracing::warn!(%err, "could not record a session's last use"),
            }
            Ok(Some(found))
        })
    }

    fn sessions_of(&self, operator_id: String, now: u64) -> Pending<Vec<Session>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE operator_id = ?1 AND expires_at > ?2
                 ORDER BY created_at DESC, id DESC"
            ))?
            .query_map(params![operator_id, now], session)?
            .collect()
        })
    }

    fn delete_session(&self, operator_id: Option<String>, id: String) -> Pending<bool> {
        self.submit(move |tx, _| {
            let removed = tx.execute(
                "DELETE FROM sessions WHERE id = ?1 AND (?2 IS NULL OR operator_id = ?2)",
                params![id, operator_id],
            )?;
            Ok(Ok(removed > 0))
        })
    }

    fn delete_sessions_of(&self, operator_id: String) -> Pending<u32> {
        self.submit(move |tx, _| {
            let removed =
                tx.execute("DELETE FROM sessions WHERE operator_id = ?1", [operator_id])?;
            Ok(Ok(removed as u32))
        })
    }

    fn create_reset(
        &self,
        token_hash: String,
        operator_id: String,
        expires_at: u64,
    ) -> Pending<()> {
        self.submit(move |tx, _| {
            tx.execute(
                "INSERT INTO password_resets (token_hash, operator_id, expires_at)
                 VALUES (?1, ?2, ?3)",
                params![token_hash, operator_id, expires_at],
            )?;
            Ok(Ok(()))
        })
    }

    fn use_reset(&self, token_hash: String, now: u64) -> Pending<Option<String>> {
        self.submit(move |tx, _| {
            let operator_id = tx
                .query_row(
                    "UPDATE password_resets SET used_at = ?2
                     WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     RETURNING operator_id",
                    params![token_hash, now],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(Ok(operator_id))
        })
    }

    fn audit(&self, mut entry: AuditEntry) -> Pending<AuditEntry> {
        self.submit(move |tx, _| {
            let id = tx.query_row(
                "INSERT INTO audit_log (at, actor, action, target, detail, ip)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                params![
                    entry.at,
                    entry.actor,
                    entry.action,
                    entry.target,
                    entry.detail.to_string(),
                    entry.ip
                ],
                |row| row.get(0),
            )?;
            entry.id = id;
            Ok(Ok(entry))
        })
    }

    fn audit_since(&self, after: u64, limit: u32) -> Pending<Vec<AuditEntry>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![after, limit], audit_entry)?
            .collect()
        })
    }
}
