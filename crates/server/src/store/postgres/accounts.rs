//! [`AccountStore`] on PostgreSQL, on pooled connections (none of it is on a message's path, so it
//! does not go through the writer). Several nodes may answer sign-ins for one account at once, so
//! every decision is one statement, atomic in the database: a failure is counted and the lock
//! set by one `UPDATE … RETURNING`; a success clears them and takes a TOTP step by one
//! conditional `UPDATE`; a reset token is used by one conditional `UPDATE … RETURNING`; a taken
//! email is the unique constraint refusing the upsert.

use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::{Fault, PgStore};
use crate::store::accounts::{
    Account, AccountRole, AccountStore, AuditEntry, Failure, Session, LAST_SEEN_STEP_MS,
};
use crate::store::decode::{self, Corrupt};
use crate::store::Pending;

const ACCOUNT_COLUMNS: &str = "operator_id, email, role, password_hash, totp_secret, \
                               totp_enabled, totp_last_step, failed_count, locked_until, \
                               created_at";
const SESSION_COLUMNS: &str =
    "id, operator_id, csrf_token, created_at, last_seen, expires_at, user_agent, method";
const AUDIT_COLUMNS: &str = "id, at, actor, action, target, detail, ip";

/// The constraint on `accounts.email` (named in `0007_accounts.sql`).
const EMAIL_UNIQUE: &str = "accounts_email_unique";

fn account(row: &Row) -> Result<Account, Corrupt> {
    let role: &str = row.get(2);
    Ok(Account {
        operator_id: row.get(0),
        email: row.get(1),
        role: AccountRole::parse(role)
            .ok_or_else(|| Corrupt(format!("unknown account role {role:?}")))?,
        password_hash: row.get(3),
        totp_secret: row.get(4),
        totp_enabled: row.get(5),
        totp_last_step: row.get::<_, i64>(6) as u64,
        failed_count: row.get::<_, i64>(7) as u32,
        locked_until: row.get::<_, i64>(8) as u64,
        created_at: row.get::<_, i64>(9) as u64,
    })
}

fn session(row: &Row) -> Session {
    Session {
        id: row.get(0),
        operator_id: row.get(1),
        csrf_token: row.get(2),
        created_at: row.get::<_, i64>(3) as u64,
        last_seen: row.get::<_, i64>(4) as u64,
        expires_at: row.get::<_, i64>(5) as u64,
        user_agent: row.get(6),
        method: row.get(7),
    }
}

fn audit_entry(row: &Row) -> Result<AuditEntry, Corrupt> {
    Ok(AuditEntry {
        id: row.get::<_, i64>(0) as u64,
        at: row.get::<_, i64>(1) as u64,
        actor: row.get(2),
        action: row.get(3),
        target: row.get(4),
        detail: decode::json(row.get(5))?,
        ip: row.get(6),
    })
}

/// Whether a statement failed because another account has the email.
fn email_taken(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(EMAIL_UNIQUE)
    })
}

impl AccountStore for PgStore {
    fn put_account(&self, a: Account) -> Pending<bool> {
        self.read(move |c| async move {
            let email = a.email.to_lowercase();
            let stored = c
                .execute(
                    "INSERT INTO accounts (operator_id, email, role, password_hash, totp_secret,
                         totp_enabled, totp_last_step, failed_count, locked_until, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                     ON CONFLICT (operator_id) DO UPDATE SET email = excluded.email,
                         role = excluded.role, password_hash = excluded.password_hash,
                         totp_secret = excluded.totp_secret, totp_enabled = excluded.totp_enabled,
                         totp_last_step = excluded.totp_last_step,
                         failed_count = excluded.failed_count,
                         locked_until = excluded.locked_until, created_at = excluded.created_at",
                    &[
                        &a.operator_id,
                        &email,
                        &a.role.as_str(),
                        &a.password_hash,
                        &a.totp_secret,
                        &a.totp_enabled,
                        &(a.totp_last_step as i64),
                        &i64::from(a.failed_count),
                        &(a.locked_until as i64),
                        &(a.created_at as i64),
                    ],
                )
                .await;
            match stored {
                Ok(_) => Ok(true),
                Err(err) if email_taken(&err) => Ok(false),
                Err(err) => Err(Fault::Pg(err)),
            }
        })
    }

    fn account(&self, operator_id: String) -> Pending<Option<Account>> {
        self.read(move |c| async move {
            let row = c
                .query_opt(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE operator_id = $1"),
                    &[&operator_id],
                )
                .await?;
            Ok(row.as_ref().map(account).transpose()?)
        })
    }

    fn account_by_email(&self, email: String) -> Pending<Option<Account>> {
        self.read(move |c| async move {
            let row = c
                .query_opt(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE email = $1"),
                    &[&email.to_lowercase()],
                )
                .await?;
            Ok(row.as_ref().map(account).transpose()?)
        })
    }

    fn accounts(&self) -> Pending<Vec<Account>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY operator_id"),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(account).collect::<Result<_, _>>()?)
        })
    }

    fn sign_in_failed(
        &self,
        operator_id: String,
        lock_after: u32,
        lock_ms: u64,
        now: u64,
    ) -> Pending<Failure> {
        let locked_until = now.saturating_add(lock_ms) as i64;
        self.read(move |c| async move {
            // The right-hand sides read the row as it was: `failed_count + 1` is this failure.
            let row = c
                .query_opt(
                    "UPDATE accounts SET failed_count = failed_count + 1,
                         locked_until = CASE WHEN failed_count + 1 >= $2 THEN $3
                                             ELSE locked_until END
                     WHERE operator_id = $1
                     RETURNING failed_count, locked_until",
                    &[&operator_id, &i64::from(lock_after), &locked_until],
                )
                .await?;
            Ok(match row {
                Some(row) => Failure {
                    failed_count: row.get::<_, i64>(0) as u32,
                    locked_until: row.get::<_, i64>(1) as u64,
                },
                None => Failure {
                    failed_count: 0,
                    locked_until: 0,
                },
            })
        })
    }

    fn sign_in_succeeded(&self, operator_id: String, totp_step: Option<u64>) -> Pending<bool> {
        self.read(move |c| async move {
            // Two nodes accepting one code at once: the row lock orders them, and the second
            // finds the step taken.
            let changed = c
                .execute(
                    "UPDATE accounts SET failed_count = 0, locked_until = 0,
                         totp_last_step = COALESCE($2, totp_last_step)
                     WHERE operator_id = $1 AND ($2::BIGINT IS NULL OR totp_last_step < $2)",
                    &[&operator_id, &totp_step.map(|s| s as i64)],
                )
                .await?;
            Ok(changed > 0)
        })
    }

    fn create_session(&self, s: Session) -> Pending<()> {
        self.read(move |c| async move {
            c.execute(
                &format!(
                    "INSERT INTO sessions ({SESSION_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                ),
                &[
                    &s.id,
                    &s.operator_id,
                    &s.csrf_token,
                    &(s.created_at as i64),
                    &(s.last_seen as i64),
                    &(s.expires_at as i64),
                    &s.user_agent,
                    &s.method,
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn session(&self, id: String, now: u64) -> Pending<Option<Session>> {
        self.read(move |c| async move {
            // One round trip: the update takes the row only when `last_seen` is stale; otherwise
            // the row is read as it is (the outer SELECT sees the table as before the update,
            // hence `NOT EXISTS (touched)`).
            let row = c
                .query_opt(
                    &format!(
                        "WITH touched AS (
                             UPDATE sessions SET last_seen = $2
                             WHERE id = $1 AND expires_at > $2 AND last_seen + $3 < $2
                             RETURNING {SESSION_COLUMNS})
                         SELECT {SESSION_COLUMNS} FROM touched
                         UNION ALL
                         SELECT {SESSION_COLUMNS} FROM sessions
                         WHERE id = $1 AND expires_at > $2
                           AND NOT EXISTS (SELECT 1 FROM touched)"
                    ),
                    &[&id, &(now as i64), &(LAST_SEEN_STEP_MS as i64)],
                )
                .await?;
            Ok(row.as_ref().map(session))
        })
    }

    fn sessions_of(&self, operator_id: String, now: u64) -> Pending<Vec<Session>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions
                         WHERE operator_id = $1 AND expires_at > $2
                         ORDER BY created_at DESC, id DESC"
                    ),
                    &[&operator_id, &(now as i64)],
                )
                .await?;
            Ok(rows.iter().map(session).collect())
        })
    }

    fn delete_session(&self, operator_id: Option<String>, id: String) -> Pending<bool> {
        self.read(move |c| async move {
            let removed = c
                .execute(
                    "DELETE FROM sessions WHERE id = $1 AND ($2::TEXT IS NULL OR operator_id = $2)",
                    &[&id, &operator_id],
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn delete_sessions_of(&self, operator_id: String) -> Pending<u32> {
        self.read(move |c| async move {
            let removed = c
                .execute(
                    "DELETE FROM sessions WHERE operator_id = $1",
                    &[&operator_id],
                )
                .await?;
            Ok(removed as u32)
        })
    }

    fn create_reset(
        &self,
        token_hash: String,
        operator_id: String,
        expires_at: u64,
    ) -> Pending<()> {
        self.read(move |c| async move {
            c.execute(
                "INSERT INTO password_resets (token_hash, operator_id, expires_at)
                 VALUES ($1, $2, $3)",
                &[&token_hash, &operator_id, &(expires_at as i64)],
            )
            .await?;
            Ok(())
        })
    }

    fn use_reset(&self, token_hash: String, now: u64) -> Pending<Option<String>> {
        self.read(move |c| async move {
            // One statement decides: two requests with one token cannot both use it.
            let row = c
                .query_opt(
                    "UPDATE password_resets SET used_at = $2
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING operator_id",
                    &[&token_hash, &(now as i64)],
                )
                .await?;
            Ok(row.map(|row| row.get(0)))
        })
    }

    fn audit(&self, mut entry: AuditEntry) -> Pending<AuditEntry> {
        self.read(move |c| async move {
            let row = c
                .query_one(
                    "INSERT INTO audit_log (at, actor, action, target, detail, ip)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[
                        &(entry.at as i64),
                        &entry.actor,
                        &entry.action,
                        &entry.target,
                        &entry.detail.to_string(),
                        &entry.ip,
                    ],
                )
                .await?;
            entry.id = row.get::<_, i64>(0) as u64;
            Ok(entry)
        })
    }

    fn audit_since(&self, after: u64, limit: u32) -> Pending<Vec<AuditEntry>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"
                    ),
                    &[&(after as i64), &i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(audit_entry).collect::<Result<_, _>>()?)
        })
    }
}
