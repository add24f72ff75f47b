//! `GET /v1/widget`: what the chat widget shows guests before anyone answers — a welcome text,
//! business hours in a time zone (the browser works out open or closed with `Intl`), the usual
//! time to a reply — and the message limits it counts against. All of it is configuration
//! (`widget_*`, `message_*_max`); [`parse_hours`] is the one reading of `widget_hours`.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::ApiError;
use crate::http::User;
use crate::AppState;

/// Days, in the order of a week, as `widget_hours` and the answer name them.
pub const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Longest welcome text, in characters.
pub const WELCOME_CHARS_MAX: usize = 500;
/// Longest expected reply time, in minutes (a week).
pub const REPLY_MINUTES_MAX: u32 = 7 * 24 * 60;

/// The routes of this module.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/widget", get(widget))
}

/// Opening hours on some days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Hours {
    /// Days these hours hold on: `mon` … `sun`, in week order.
    pub days: Vec<String>,
    /// Opening time, `HH:MM` (24-hour clock).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub open: String,
    /// Closing time, `HH:MM`, after `open` (`24:00` is midnight at the end of the day).
    #[schemars(regex(pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))]
    pub close: String,
}

/// `GET /v1/widget`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct WidgetSettings {
    /// Shown to guests above the conversation; empty: nothing.
    pub welcome: String,
    /// When operators are there, in `timezone`; empty: always.
    pub hours: Vec<Hours>,
    /// An IANA time zone name, e.g. `Europe/Madrid`.
    pub timezone: String,
    /// The usual time to a reply, in minutes; 0: not shown.
    pub reply_minutes: u32,
    /// Most Unicode characters (scalar values) in a message body.
    pub message_chars_max: u64,
    /// Most bytes (UTF-8) in a message body.
    pub message_bytes_max: u64,
    /// Largest file a user may attach, in bytes.
    pub attachment_bytes_max: u64,
    /// Types of files allowed, as the server finds them in the content.
    pub attachment_types: Vec<String>,
}

/// Minutes after midnight of `HH:MM` (`24:00` only when `end`).
fn minutes(text: &str, end: bool) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn day(name: &str) -> Option<usize> {
    DAYS.iter().position(|d| *d == name)
}

/// Reads `widget_hours`: comma-separated entries `DAYS HH:MM-HH:MM`, where `DAYS` is a day
/// (`mon` … `sun`) or a range of them (`mon-fri`; `sat-mon` wraps over the week end), and the
/// closing time comes after the opening time (`24:00` for midnight). Empty: no hours (always
/// open). Lower case, single spaces; anything else is refused with the entry at fault.
pub fn parse_hours(text: &str) -> Result<Vec<Hours>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|entry| {
            let entry = entry.trim();
            let bad = || format!("`{entry}` is not like `mon-fri 09:00-18:00`");
            let (days, times) = entry.split_once(' ').ok_or_else(bad)?;
            let (first, last) = days.split_once('-').unwrap_or((days, days));
            let (first, last) = (day(first).ok_or_else(bad)?, day(last).ok_or_else(bad)?);
            let (open, close) = times.split_once('-').ok_or_else(bad)?;
            let (from, to) = (
                minutes(open, false).ok_or_else(bad)?,
                minutes(close, true).ok_or_else(bad)?,
            );
            if to <= from {
                return Err(format!("`{entry}`: closing must come after opening"));
            }
            let count = (last + 7 - first) % 7 + 1;
            Ok(Hours {
                days: (0..count)
                    .map(|i| DAYS[(first + i) % 7].to_owned())
                    .collect(),
                open: open.to_owned(),
                close: close.to_owned(),
            })
        })
        .collect()
}

/// Whether `name` looks like an IANA time zone name (`UTC`, `Europe/Madrid`, `Etc/GMT+3`,
/// `America/Argentina/Buenos_Aires`). Only the shape: the browser knows the zones.
pub fn timezone_shape(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('/').all(|part| {
            part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-'))
        })
}

/// `GET /v1/widget` (any user).
async fn widget(
    State(app): State<Arc<AppState>>,
    User(_): User,
) -> Result<Json<WidgetSettings>, ApiError> {
    let config = &app.config;
    Ok(Json(WidgetSettings {
        welcome: config.widget_welcome.clone(),
        // Checked when the server started.
        hours: parse_hours(&config.widget_hours).unwrap_or_default(),
        timezone: config.widget_timezone.clone(),
        reply_minutes: config.widget_reply_minutes,
        message_chars_max: config.message_chars_max() as u64,
        message_bytes_max: config.message_bytes_max as u64,
        attachment_bytes_max: config.attachment_bytes_max,
        attachment_types: config.attachment_types.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours(days: &[&str], open: &str, close: &str) -> Hours {
        Hours {
            days: days.iter().map(|d| d.to_string()).collect(),
            open: open.into(),
            close: close.into(),
        }
    }

    #[test]
    fn hours_are_read_strictly() {
        assert_eq!(parse_hours(""), Ok(vec![]));
        assert_eq!(
            parse_hours("mon-fri 09:00-18:00, sat 10:00-14:00,sun 00:00-24:00"),
            Ok(vec![
                hours(&["mon", "tue", "wed", "thu", "fri"], "09:00", "18:00"),
                hours(&["sat"], "10:00", "14:00"),
                hours(&["sun"], "00:00", "24:00"),
            ])
        );
        assert_eq!(
            parse_hours("sat-mon 10:00-12:30"),
            Ok(vec![hours(&["sat", "sun", "mon"], "10:00", "12:30")])
        );
        for bad in [
            "mon-fri",
            "mon-fri 9:00-18:00",
            "Mon 09:00-18:00",
            "mon 09:00-09:00",
            "mon 18:00-09:00",
            "mon 24:00-24:00",
            "mon 09:00-24:01",
            "mon 09:60-10:00",
            "mon  09:00-10:00",
            "mon 09:00 - 10:00",
            "monday 09:00-10:00",
            "mon 09:00-10:00,",
            "mon,tue 09:00-10:00",
            "mon 09:00-10:00 extra",
            "mon 0９:00-10:00",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn time_zones_are_checked_for_shape() {
        for good in [
            "UTC",
            "Europe/Madrid",
            "Etc/GMT+3",
            "America/Argentina/Buenos_Aires",
        ] {
            assert!(timezone_shape(good), "{good}");
        }
        for bad in [
            "",
            "Europe/",
            "/Madrid",
            "Europe Madrid",
            "Europe/Madrid;",
            "1abc",
            "É",
        ] {
            assert!(!timezone_shape(bad), "{bad}");
        }
    }
}
