//! Server configuration: one typed struct with documented defaults and units. Sources, later
//! overriding earlier: defaults, the TOML file given by `--config`, `SURECHAT_*` environment
//! variables, command-line flags. [`Config::validate`] runs at start and names the bad key.

use std::net::SocketAddr;
use std::path::PathBuf;

use protocol::limits;
use serde::Deserialize;

/// Every setting of `surechat serve`. Field names are the TOML keys; the environment variable of
/// each is `SURECHAT_` followed by the key in upper case (e.g. `SURECHAT_MESSAGE_BYTES_MAX`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Directory of the SQLite database and generated secrets. Default `./surechat-data`.
    pub data: PathBuf,
    /// Admin API key (`Authorization: Bearer <key>`). Default: generated at first start and kept
    /// in `<data>/admin-key`.
    pub admin_key: Option<String>,
    /// Shared secret for HS256 user tokens, at least 32 bytes. Default: generated at first start
    /// and kept in `<data>/jwt-secret`.
    pub jwt_secret: Option<String>,
    /// Largest message body, in bytes. Default 16384.
    pub message_bytes_max: usize,
    /// Most participants per conversation. Default 32.
    pub participants_max: usize,
    /// Sustained `send` rate per connection, per second. Default 100.
    pub sends_per_second_max: u32,
    /// Burst of sends above the sustained rate. Default 200.
    pub sends_burst_max: u32,
    /// Most simultaneous connections per user. Default 100.
    pub connections_per_user_max: usize,
    /// Interval of server pings, in milliseconds. Default 25000.
    pub heartbeat_interval_ms: u64,
    /// Silence beyond the interval before a connection is dead, in milliseconds. Default 10000.
    pub heartbeat_grace_ms: u64,
    /// Notices queued per connection before it is cut off as lagging. Default 1024.
    pub connection_queue_frames: usize,
    /// Unacknowledged sends one connection may have in flight before the server stops reading
    /// from it (backpressure). Default 256.
    pub connection_inflight_max: usize,
    /// With frames queued for a device and none written for this long, the device is not
    /// reading and is closed 4409, in milliseconds. Default 10000.
    pub connection_write_stall_ms: u64,
    /// Most connections open at once (HTTP and WebSocket); more are closed at once. `surechat
    /// serve` lowers it to fit the open-files limit. Default 20000.
    pub connections_max: usize,
    /// Most connections open at once from one source address. Default 1024.
    pub connections_per_address_max: usize,
    /// Time for a client to send a request's headers, in milliseconds. Default 10000.
    pub http_header_read_timeout_ms: u64,
    /// Time for a client to send a request's body, in milliseconds. Default 30000.
    pub http_body_read_timeout_ms: u64,
    /// A connection that moves no byte for this long (keep-alive with no request, or a request
    /// that stopped) is closed, in milliseconds. Default 60000.
    pub http_idle_timeout_ms: u64,
    /// Most writes per storage transaction (group commit). Default 1024.
    pub group_commit_max: usize,
    /// How long an SQLite write waits for the database's write lock while another process holds
    /// it (SQLite's busy timeout) before the batch fails `unavailable`, in milliseconds. Default
    /// 5000. Chaos runs lower it so that a lock held from outside refuses sends quickly.
    pub sqlite_busy_timeout_ms: u64,
    /// Log format: `text` or `json`. Default `text`.
    pub log_format: String,
    /// PostgreSQL connection string (`postgres://…` or `host=… dbname=…`); when set, storage is
    /// PostgreSQL and several nodes may share it. Default: none (SQLite under `data`).
    pub database: Option<String>,
    /// How often a node on PostgreSQL rereads the conversations its devices follow, to catch
    /// what other nodes' notices did not tell it, in milliseconds. Default 2000.
    pub sweep_interval_ms: u64,
    /// Assign new conversations to available operators in turn. Default false.
    pub round_robin: bool,
    /// Add an operator token's unknown user to the operator directory on first use (named by
    /// its id), instead of refusing it `unknown_operator`. Default false: only operators the
    /// admin put in the directory may act as operators. A disabled operator stays refused.
    pub operators_auto_register: bool,
    /// After how long a message no recipient has read causes `message.unread_timeout`, in
    /// milliseconds; 0 turns it off. Default 900000 (15 minutes).
    pub unread_timeout_ms: u64,
    /// After how long of failing without a success a webhook endpoint is disabled, in
    /// milliseconds. Default 86400000 (24 hours).
    pub webhook_disable_after_ms: u64,
    /// How long one webhook delivery may take, in milliseconds. Default 10000.
    pub webhook_timeout_ms: u64,
    /// First retry delay of a failing webhook endpoint (doubling up to 10 minutes), in
    /// milliseconds. Default 1000.
    pub webhook_backoff_first_ms: u64,
    /// How long connecting to a webhook receiver (TCP and TLS) may take, in milliseconds; part
    /// of `webhook_timeout_ms`. Default 5000.
    pub webhook_connect_timeout_ms: u64,
    /// Let webhooks reach loopback, private, link-local and other non-public addresses. Off by
    /// default, so an endpoint URL cannot reach the server's own network (SSRF); turn it on for
    /// local development. Default false.
    pub webhook_allow_private: bool,
    /// A PEM file of extra CA certificates trusted for `https://` receivers, besides the usual
    /// web roots (e.g. a company CA). Default: none.
    pub webhook_ca_file: Option<PathBuf>,
    /// Origins allowed to embed the pages under `/web/` in a frame (CSP `frame-ancestors`), space
    /// separated, e.g. `'self' https://booking.example`. Default `'self'`.
    pub web_frame_ancestors: String,
    /// How long an operator with no connection still counts as present (so a page reload does
    /// not flap), in milliseconds. Default 15000.
    pub presence_leave_delay_ms: u64,
    /// With several nodes: how often a node renews its operators' presence in storage and reads
    /// everyone's back, in milliseconds. Default 5000.
    pub presence_heartbeat_ms: u64,
    /// With several nodes: how long a node's word on its operators holds without renewal, in
    /// milliseconds; a node that dies takes its operators' presence with it after this. Default
    /// 15000; more than `presence_heartbeat_ms`.
    pub presence_ttl_ms: u64,
    /// The server's address as people reach it, for links in emails (unsubscribe) and the
    /// default link back to the conversation, e.g. `https://chat.example.com`. Default
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// How often the server looks for people to tell of unread messages by push or email, in
    /// milliseconds. Default 1000.
    pub reach_interval_ms: u64,
    /// A message still unread this long, with none of the person's devices connected, is pushed
    /// to their push subscriptions, in milliseconds. Default 60000.
    pub push_delay_ms: u64,
    /// How long a push service keeps a push for a device that is offline (`TTL`), in seconds;
    /// also how long the server retries a push. Default 86400.
    pub push_ttl_s: u64,
    /// Put the message's text in pushes. Default false: a push says only "New message about
    /// booking …" (push services never see the text, even encrypted).
    pub push_bodies: bool,
    /// The contact in the VAPID claim (`mailto:` or `https:` URL) push services reach you at.
    /// Default: `public_url`.
    pub push_subject: Option<String>,
    /// Allow push endpoints on private and loopback addresses (local push services in tests).
    /// Default false.
    pub push_allow_private: bool,
    /// The VAPID private key (PEM, PKCS#8, P-256). Default: generated at first start and kept in
    /// `<data>/vapid-key.pem`.
    pub vapid_private_key: Option<String>,
    /// SMTP server for emails; none: no email is sent. Default: none.
    pub smtp_host: Option<String>,
    /// SMTP port. Default 587.
    pub smtp_port: u16,
    /// `starttls` (upgrade after connecting, port 587), `tls` (TLS from the start, port 465) or
    /// `none` (plain text: only for a relay on the same host). Default `starttls`.
    pub smtp_security: String,
    /// SMTP user name, if the server wants one. Default: none.
    pub smtp_username: Option<String>,
    /// SMTP password. Default: none.
    pub smtp_password: Option<String>,
    /// Time for one SMTP delivery, in milliseconds. Default 10000.
    pub smtp_timeout_ms: u64,
    /// The `From` address of emails, e.g. `Bookings <support@example.com>`. Required with
    /// `smtp_host`.
    pub email_from: Option<String>,
    /// An operator's message a client has not read for this long is sent to the client by
    /// email, in milliseconds. Default 600000 (10 minutes).
    pub email_delay_ms: u64,
    /// At most one email per conversation in this period, in milliseconds. Default 3600000.
    pub email_period_ms: u64,
    /// Put the unread messages' text in emails. Default true.
    pub email_bodies: bool,
    /// The integrator's page that opens a conversation from an email's link; the link adds
    /// `surechat_link=<token>` to it. Default `<public_url>/web/demo/client.html`.
    pub email_link_base: Option<String>,
    /// How long an email's link opens the conversation, in milliseconds. Default 604800000
    /// (7 days).
    pub email_link_ttl_ms: u64,
    /// How long a console sign-in lasts, in milliseconds. Default 43200000 (12 hours).
    pub session_ttl_ms: u64,
    /// Lifetime of the short tokens the console gets from its session, in seconds. Default 600.
    pub console_token_ttl_s: u64,
    /// Failed sign-ins in a row that lock an account. Default 5.
    pub signin_lock_after: u32,
    /// How long a locked account stays locked, in milliseconds. Default 900000 (15 minutes).
    pub signin_lock_ms: u64,
    /// Mark the session cookie `Secure` (sent over HTTPS only; browsers also send it to
    /// `http://localhost`). Default true.
    pub cookie_secure: bool,
    /// How long an emailed password reset link works, in milliseconds. Default 3600000.
    pub password_reset_ttl_ms: u64,
    /// Single sign-on providers (OpenID Connect), TOML only: `[[oidc]]` tables. Default: none.
    pub oidc: Vec<crate::signin::OidcSettings>,
    /// Most Unicode characters (scalar values) in a message body; at most `message_bytes_max`.
    /// Default 4096, or `message_bytes_max` when that is lower ([`Config::message_chars_max`]).
    pub message_chars_max: Option<usize>,
    /// Text the chat widget shows guests, at most 500 characters. Default empty (none).
    pub widget_welcome: String,
    /// Business hours, e.g. `mon-fri 09:00-18:00, sat 10:00-14:00` (see
    /// [`crate::widget::parse_hours`]), in `widget_timezone`. Default empty: always open.
    pub widget_hours: String,
    /// The IANA time zone of `widget_hours`, e.g. `Europe/Madrid`. Default `UTC`.
    pub widget_timezone: String,
    /// The usual time to a reply the widget shows, in minutes; 0 shows none. Default 0.
    pub widget_reply_minutes: u32,
    /// Largest file a user may upload, in bytes. Default 26214400 (25 MiB).
    pub attachment_bytes_max: u64,
    /// Types of files allowed, as found in their content. TOML: an array; environment: comma
    /// separated. Default `image/jpeg, image/png, image/gif, image/webp, application/pdf`.
    pub attachment_types: Vec<String>,
    /// Remove EXIF, XMP and comments (a phone's GPS position) from images. Default true.
    pub attachment_strip_metadata: bool,
    /// Bytes one user may upload in 24 hours. Default 524288000 (500 MiB).
    pub upload_bytes_per_day: u64,
    /// Uploads one user may create per minute. Default 60.
    pub uploads_per_minute: u32,
    /// Seconds after which an upload no message names is removed. Default 86400.
    pub upload_ttl_s: u64,
    /// Lifetime of a signed download link, in seconds. Default 300.
    pub attachment_link_ttl_s: u64,
}

/// The types the server can recognise in a file's content (`media::sniff`); only these may be
/// allowed.
pub const ATTACHMENT_TYPES_KNOWN: &[&str] = ATTACHMENT_TYPES_DEFAULT;

/// The types of files allowed by default: photos and PDFs, which browsers show without running
/// anything of theirs in the page.
pub const ATTACHMENT_TYPES_DEFAULT: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./surechat-data"),
            admin_key: None,
            jwt_secret: None,
            message_bytes_max: limits::MESSAGE_BYTES_MAX,
            participants_max: limits::PARTICIPANTS_MAX,
            sends_per_second_max: limits::SENDS_PER_SECOND_MAX,
            sends_burst_max: limits::SENDS_BURST_MAX,
            connections_per_user_max: limits::CONNECTIONS_PER_USER_MAX,
            heartbeat_interval_ms: limits::HEARTBEAT_INTERVAL_MS,
            heartbeat_grace_ms: limits::HEARTBEAT_GRACE_MS,
            connection_queue_frames: limits::CONNECTION_QUEUE_FRAMES,
            connection_inflight_max: 256,
            connection_write_stall_ms: limits::WRITE_STALL_MS,
            connections_max: 20_000,
            connections_per_address_max: 1024,
            http_header_read_timeout_ms: 10_000,
            http_body_read_timeout_ms: 30_000,
            http_idle_timeout_ms: 60_000,
            group_commit_max: 1024,
            sqlite_busy_timeout_ms: 5_000,
            log_format: "text".into(),
            database: None,
            sweep_interval_ms: 2_000,
            round_robin: false,
            operators_auto_register: false,
            unread_timeout_ms: 15 * 60 * 1000,
            webhook_disable_after_ms: 24 * 3600 * 1000,
            webhook_timeout_ms: 10_000,
            webhook_backoff_first_ms: 1_000,
            webhook_connect_timeout_ms: 5_000,
            webhook_allow_private: false,
            webhook_ca_file: None,
            web_frame_ancestors: "'self'".into(),
            presence_leave_delay_ms: 15_000,
            presence_heartbeat_ms: 5_000,
            presence_ttl_ms: 15_000,
            public_url: None,
            reach_interval_ms: 1_000,
            push_delay_ms: 60_000,
            push_ttl_s: 86_400,
            push_bodies: false,
            push_subject: None,
            push_allow_private: false,
            vapid_private_key: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_timeout_ms: 10_000,
            email_from: None,
            email_delay_ms: 10 * 60 * 1000,
            email_period_ms: 3600 * 1000,
            email_bodies: true,
            email_link_base: None,
            email_link_ttl_ms: 7 * 24 * 3600 * 1000,
            session_ttl_ms: 12 * 3600 * 1000,
            console_token_ttl_s: 600,
            signin_lock_after: 5,
            signin_lock_ms: 15 * 60 * 1000,
            cookie_secure: true,
            password_reset_ttl_ms: 3600 * 1000,
            oidc: Vec::new(),
            message_chars_max: None,
            widget_welcome: String::new(),
            widget_hours: String::new(),
            widget_timezone: "UTC".into(),
            widget_reply_minutes: 0,
            attachment_bytes_max: limits::ATTACHMENT_BYTES_MAX,
            attachment_types: ATTACHMENT_TYPES_DEFAULT
                .iter()
                .map(|t| t.to_string())
                .collect(),
            attachment_strip_metadata: true,
            upload_bytes_per_day: limits::UPLOAD_BYTES_PER_DAY,
            uploads_per_minute: limits::UPLOADS_PER_MINUTE,
            upload_ttl_s: limits::UPLOAD_TTL_S,
            attachment_link_ttl_s: limits::ATTACHMENT_LINK_TTL_S,
        }
    }
}

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct (unknown keys are errors).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid value for `{key}`: {message}")]
    Invalid {
        /// The key (TOML name; the env var is `SURECHAT_<KEY>`).
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// The longest any duration setting may be, in milliseconds (30 days).
pub const DURATION_MS_MAX: u64 = 30 * 24 * 3600 * 1000;

/// The keys that may be set from the environment, as `SURECHAT_<KEY>`.
pub const ENV_KEYS: &[&str] = &[
    "listen",
    "data",
    "admin_key",
    "jwt_secret",
    "message_bytes_max",
    "participants_max",
    "sends_per_second_max",
    "sends_burst_max",
    "connections_per_user_max",
    "heartbeat_interval_ms",
    "heartbeat_grace_ms",
    "connection_queue_frames",
    "connection_inflight_max",
    "connection_write_stall_ms",
    "connections_max",
    "connections_per_address_max",
    "http_header_read_timeout_ms",
    "http_body_read_timeout_ms",
    "http_idle_timeout_ms",
    "group_commit_max",
    "sqlite_busy_timeout_ms",
    "log_format",
    "database",
    "sweep_interval_ms",
    "round_robin",
    "operators_auto_register",
    "unread_timeout_ms",
    "webhook_disable_after_ms",
    "webhook_timeout_ms",
    "webhook_backoff_first_ms",
    "webhook_connect_timeout_ms",
    "webhook_allow_private",
    "webhook_ca_file",
    "web_frame_ancestors",
    "presence_leave_delay_ms",
    "presence_heartbeat_ms",
    "presence_ttl_ms",
    "public_url",
    "reach_interval_ms",
    "push_delay_ms",
    "push_ttl_s",
    "push_bodies",
    "push_subject",
    "push_allow_private",
    "vapid_private_key",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "smtp_timeout_ms",
    "email_from",
    "email_delay_ms",
    "email_period_ms",
    "email_bodies",
    "email_link_base",
    "email_link_ttl_ms",
    "session_ttl_ms",
    "console_token_ttl_s",
    "signin_lock_after",
    "signin_lock_ms",
    "cookie_secure",
    "password_reset_ttl_ms",
    "message_chars_max",
    "widget_welcome",
    "widget_hours",
    "widget_timezone",
    "widget_reply_minutes",
    "attachment_bytes_max",
    "attachment_types",
    "attachment_strip_metadata",
    "upload_bytes_per_day",
    "uploads_per_minute",
    "upload_ttl_s",
    "attachment_link_ttl_s",
];

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })
    }

    /// Applies `SURECHAT_*` variables from `vars` (usually `std::env::vars()`).
    pub fn apply_env(
        &mut self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let Some(key) = name.strip_prefix("SURECHAT_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if let Some(known) = ENV_KEYS.iter().find(|k| **k == key) {
                self.set(known, &value)?;
            }
        }
        Ok(())
    }

    /// Sets one key from its text form.
    pub fn set(&mut self, key: &'static str, value: &str) -> Result<(), ConfigError> {
        fn num<T: std::str::FromStr>(key: &'static str, value: &str) -> Result<T, ConfigError> {
            value.trim().parse().map_err(|_| ConfigError::Invalid {
                key,
                message: format!("`{value}` is not a valid number"),
            })
        }
        fn boolean(key: &'static str, value: &str) -> Result<bool, ConfigError> {
            match value.trim() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(ConfigError::Invalid {
                    key,
                    message: format!("`{value}` is not true or false"),
                }),
            }
        }
        match key {
            "listen" => {
                self.listen = value.parse().map_err(|_| ConfigError::Invalid {
                    key,
                    message: format!("`{value}` is not an address like 127.0.0.1:8080"),
                })?
            }
            "data" => self.data = PathBuf::from(value),
            "admin_key" => self.admin_key = Some(value.to_owned()),
            "jwt_secret" => self.jwt_secret = Some(value.to_owned()),
            "message_bytes_max" => self.message_bytes_max = num(key, value)?,
            "participants_max" => self.participants_max = num(key, value)?,
            "sends_per_second_max" => self.sends_per_second_max = num(key, value)?,
            "sends_burst_max" => self.sends_burst_max = num(key, value)?,
            "connections_per_user_max" => self.connections_per_user_max = num(key, value)?,
            "heartbeat_interval_ms" => self.heartbeat_interval_ms = num(key, value)?,
            "heartbeat_grace_ms" => self.heartbeat_grace_ms = num(key, value)?,
            "connection_queue_frames" => self.connection_queue_frames = num(key, value)?,
            "connection_inflight_max" => self.connection_inflight_max = num(key, value)?,
            "connection_write_stall_ms" => self.connection_write_stall_ms = num(key, value)?,
            "connections_max" => self.connections_max = num(key, value)?,
            "connections_per_address_max" => self.connections_per_address_max = num(key, value)?,
            "http_header_read_timeout_ms" => self.http_header_read_timeout_ms = num(key, value)?,
            "http_body_read_timeout_ms" => self.http_body_read_timeout_ms = num(key, value)?,
            "http_idle_timeout_ms" => self.http_idle_timeout_ms = num(key, value)?,
            "group_commit_max" => self.group_commit_max = num(key, value)?,
            "sqlite_busy_timeout_ms" => self.sqlite_busy_timeout_ms = num(key, value)?,
            "log_format" => self.log_format = value.to_owned(),
            "database" => self.database = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "sweep_interval_ms" => self.sweep_interval_ms = num(key, value)?,
            "round_robin" => self.round_robin = boolean(key, value)?,
            "operators_auto_register" => self.operators_auto_register = boolean(key, value)?,
            "unread_timeout_ms" => self.unread_timeout_ms = num(key, value)?,
            "webhook_disable_after_ms" => self.webhook_disable_after_ms = num(key, value)?,
            "webhook_timeout_ms" => self.webhook_timeout_ms = num(key, value)?,
            "webhook_backoff_first_ms" => self.webhook_backoff_first_ms = num(key, value)?,
            "webhook_connect_timeout_ms" => self.webhook_connect_timeout_ms = num(key, value)?,
            "webhook_allow_private" => self.webhook_allow_private = boolean(key, value)?,
            "webhook_ca_file" => {
                self.webhook_ca_file =
                    Some(PathBuf::from(value)).filter(|p| !p.as_os_str().is_empty())
            }
            "web_frame_ancestors" => self.web_frame_ancestors = value.to_owned(),
            "presence_leave_delay_ms" => self.presence_leave_delay_ms = num(key, value)?,
            "presence_heartbeat_ms" => self.presence_heartbeat_ms = num(key, value)?,
            "presence_ttl_ms" => self.presence_ttl_ms = num(key, value)?,
            "public_url" => self.public_url = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "reach_interval_ms" => self.reach_interval_ms = num(key, value)?,
            "push_delay_ms" => self.push_delay_ms = num(key, value)?,
            "push_ttl_s" => self.push_ttl_s = num(key, value)?,
            "push_bodies" => self.push_bodies = boolean(key, value)?,
            "push_subject" => self.push_subject = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "push_allow_private" => self.push_allow_private = boolean(key, value)?,
            "vapid_private_key" => {
                self.vapid_private_key = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "smtp_host" => self.smtp_host = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "smtp_port" => self.smtp_port = num(key, value)?,
            "smtp_security" => self.smtp_security = value.trim().to_owned(),
            "smtp_username" => {
                self.smtp_username = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "smtp_password" => {
                self.smtp_password = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "smtp_timeout_ms" => self.smtp_timeout_ms = num(key, value)?,
            "email_from" => self.email_from = Some(value.to_owned()).filter(|v| !v.is_empty()),
            "email_delay_ms" => self.email_delay_ms = num(key, value)?,
            "email_period_ms" => self.email_period_ms = num(key, value)?,
            "email_bodies" => self.email_bodies = boolean(key, value)?,
            "email_link_base" => {
                self.email_link_base = Some(value.to_owned()).filter(|v| !v.is_empty())
            }
            "email_link_ttl_ms" => self.email_link_ttl_ms = num(key, value)?,
            "session_ttl_ms" => self.session_ttl_ms = num(key, value)?,
            "console_token_ttl_s" => self.console_token_ttl_s = num(key, value)?,
            "signin_lock_after" => self.signin_lock_after = num(key, value)?,
            "signin_lock_ms" => self.signin_lock_ms = num(key, value)?,
            "password_reset_ttl_ms" => self.password_reset_ttl_ms = num(key, value)?,
            "cookie_secure" => self.cookie_secure = boolean(key, value)?,
            "message_chars_max" => self.message_chars_max = Some(num(key, value)?),
            "widget_welcome" => self.widget_welcome = value.to_owned(),
            "widget_hours" => self.widget_hours = value.to_owned(),
            "widget_timezone" => self.widget_timezone = value.trim().to_owned(),
            "widget_reply_minutes" => self.widget_reply_minutes = num(key, value)?,
            "attachment_bytes_max" => self.attachment_bytes_max = num(key, value)?,
            "attachment_types" => {
                self.attachment_types = value
                    .split(',')
                    .map(|t| t.trim().to_ascii_lowercase())
                    .filter(|t| !t.is_empty())
                    .collect()
            }
            "attachment_strip_metadata" => self.attachment_strip_metadata = boolean(key, value)?,
            "upload_bytes_per_day" => self.upload_bytes_per_day = num(key, value)?,
            "uploads_per_minute" => self.uploads_per_minute = num(key, value)?,
            "upload_ttl_s" => self.upload_ttl_s = num(key, value)?,
            "attachment_link_ttl_s" => self.attachment_link_ttl_s = num(key, value)?,
            _ => {
                return Err(ConfigError::Invalid {
                    key,
                    message: "unknown key".into(),
                })
            }
        }
        Ok(())
    }

    /// Most Unicode characters in a message body: `message_chars_max`, or 4096 (at most
    /// `message_bytes_max`) when it is not set.
    pub fn message_chars_max(&self) -> usize {
        self.message_chars_max
            .unwrap_or(protocol::limits::MESSAGE_CHARS_DEFAULT.min(self.message_bytes_max))
    }

    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if self.message_bytes_max == 0 || self.message_bytes_max > limits::MESSAGE_BYTES_CEILING {
            return invalid(
                "message_bytes_max",
                format!("must be between 1 and {}", limits::MESSAGE_BYTES_CEILING),
            );
        }
        if let Some(chars) = self.message_chars_max {
            if chars == 0 || chars > self.message_bytes_max {
                return invalid(
                    "message_chars_max",
                    "must be between 1 and message_bytes_max".into(),
                );
            }
        }
        if self.widget_welcome.chars().count() > crate::widget::WELCOME_CHARS_MAX {
            return invalid(
                "widget_welcome",
                format!(
                    "must be at most {} characters",
                    crate::widget::WELCOME_CHARS_MAX
                ),
            );
        }
        if self.attachment_bytes_max == 0 {
            return invalid("attachment_bytes_max", "must be at least 1".into());
        }
        if let Some(unknown) = self
            .attachment_types
            .iter()
            .find(|t| !ATTACHMENT_TYPES_KNOWN.contains(&t.as_str()))
        {
            return invalid(
                "attachment_types",
                format!(
                    "`{unknown}` is not a type the server recognises by content (known: {})",
                    ATTACHMENT_TYPES_KNOWN.join(", ")
                ),
            );
        }
        if self.attachment_link_ttl_s == 0 || self.upload_ttl_s == 0 {
            let key = if self.upload_ttl_s == 0 {
                "upload_ttl_s"
            } else {
                "attachment_link_ttl_s"
            };
            return invalid(key, "must be at least 1".into());
        }
        if let Err(why) = crate::widget::parse_hours(&self.widget_hours) {
            return invalid("widget_hours", why);
        }
        if !crate::widget::timezone_shape(&self.widget_timezone) {
            return invalid(
                "widget_timezone",
                format!(
                    "`{}` is not a time zone name like Europe/Madrid or UTC",
                    self.widget_timezone
                ),
            );
        }
        if self.widget_reply_minutes > crate::widget::REPLY_MINUTES_MAX {
            return invalid(
                "widget_reply_minutes",
                format!("must be at most {}", crate::widget::REPLY_MINUTES_MAX),
            );
        }
        if self.participants_max < 2 {
            return invalid("participants_max", "must be at least 2".into());
        }
        if self.sends_per_second_max == 0 {
            return invalid("sends_per_second_max", "must be at least 1".into());
        }
        if self.sends_burst_max < self.sends_per_second_max {
            return invalid(
                "sends_burst_max",
                "must be at least sends_per_second_max".into(),
            );
        }
        if self.connections_per_user_max == 0 {
            return invalid("connections_per_user_max", "must be at least 1".into());
        }
        if self.heartbeat_interval_ms < 100 {
            return invalid("heartbeat_interval_ms", "must be at least 100".into());
        }
        if self.presence_heartbeat_ms < 50 {
            return invalid("presence_heartbeat_ms", "must be at least 50".into());
        }
        if self.presence_ttl_ms <= self.presence_heartbeat_ms {
            return invalid(
                "presence_ttl_ms",
                "must be more than presence_heartbeat_ms (rows would expire between renewals)"
                    .into(),
            );
        }
        self.validate_reach()?;
        self.validate_signin()?;
        if self.connection_queue_frames < 16 {
            return invalid("connection_queue_frames", "must be at least 16".into());
        }
        if self.connection_inflight_max == 0 {
            return invalid("connection_inflight_max", "must be at least 1".into());
        }
        // Every duration is added to clocks: bounded, so no setting can overflow one.
        for (key, value) in [
            ("heartbeat_interval_ms", self.heartbeat_interval_ms),
            ("heartbeat_grace_ms", self.heartbeat_grace_ms),
            ("connection_write_stall_ms", self.connection_write_stall_ms),
            (
                "http_header_read_timeout_ms",
                self.http_header_read_timeout_ms,
            ),
            ("http_body_read_timeout_ms", self.http_body_read_timeout_ms),
            ("http_idle_timeout_ms", self.http_idle_timeout_ms),
            ("sqlite_busy_timeout_ms", self.sqlite_busy_timeout_ms),
            ("sweep_interval_ms", self.sweep_interval_ms),
            ("unread_timeout_ms", self.unread_timeout_ms),
            ("webhook_disable_after_ms", self.webhook_disable_after_ms),
            ("webhook_timeout_ms", self.webhook_timeout_ms),
            ("webhook_backoff_first_ms", self.webhook_backoff_first_ms),
            ("presence_leave_delay_ms", self.presence_leave_delay_ms),
            ("presence_heartbeat_ms", self.presence_heartbeat_ms),
            ("presence_ttl_ms", self.presence_ttl_ms),
            ("reach_interval_ms", self.reach_interval_ms),
            ("push_delay_ms", self.push_delay_ms),
            ("push_ttl_s", self.push_ttl_s.saturating_mul(1000)),
            ("smtp_timeout_ms", self.smtp_timeout_ms),
            ("email_delay_ms", self.email_delay_ms),
            ("email_period_ms", self.email_period_ms),
            ("email_link_ttl_ms", self.email_link_ttl_ms),
            ("session_ttl_ms", self.session_ttl_ms),
            (
                "console_token_ttl_s",
                self.console_token_ttl_s.saturating_mul(1000),
            ),
            ("signin_lock_ms", self.signin_lock_ms),
            ("password_reset_ttl_ms", self.password_reset_ttl_ms),
        ] {
            if value > DURATION_MS_MAX {
                return invalid(key, format!("must be at most {DURATION_MS_MAX} (30 days)"));
            }
        }
        for (key, value) in [
            ("connections_max", self.connections_max),
            (
                "connections_per_address_max",
                self.connections_per_address_max,
            ),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1".into());
            }
        }
        for (key, value) in [
            (
                "http_header_read_timeout_ms",
                self.http_header_read_timeout_ms,
            ),
            ("http_body_read_timeout_ms", self.http_body_read_timeout_ms),
            ("http_idle_timeout_ms", self.http_idle_timeout_ms),
        ] {
            if value < 100 {
                return invalid(key, "must be at least 100".into());
            }
        }
        if self.connection_write_stall_ms < 100 {
            return invalid(
                "connection_write_stall_ms",
                "must be at least 100 (a slow network is not a stalled reader)".into(),
            );
        }
        if self.group_commit_max == 0 {
            return invalid("group_commit_max", "must be at least 1".into());
        }
        if self.sqlite_busy_timeout_ms < 10 {
            return invalid("sqlite_busy_timeout_ms", "must be at least 10".into());
        }
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return invalid("jwt_secret", "must be at least 32 bytes".into());
            }
        }
        if let Some(key) = &self.admin_key {
            if key.len() < 16 {
                return invalid("admin_key", "must be at least 16 bytes".into());
            }
        }
        if self.sweep_interval_ms < 100 {
            return invalid("sweep_interval_ms", "must be at least 100".into());
        }
        if let Some(url) = &self.database {
            if url.parse::<tokio_postgres::Config>().is_err() {
                return invalid(
                    "database",
                    "is not a PostgreSQL connection string (postgres://user@host/db)".into(),
                );
            }
        }
        if self.webhook_timeout_ms < 100 {
            return invalid("webhook_timeout_ms", "must be at least 100".into());
        }
        if self.webhook_connect_timeout_ms < 100 {
            return invalid("webhook_connect_timeout_ms", "must be at least 100".into());
        }
        if let Some(path) = &self.webhook_ca_file {
            crate::webhooks::destination::load_ca_file(path).map_err(|message| {
                ConfigError::Invalid {
                    key: "webhook_ca_file",
                    message,
                }
            })?;
        }
        // The value lands inside a header: a `;` would start another CSP directive (and a line
        // break another header), so only source expressions separated by spaces are taken.
        if self.web_frame_ancestors.trim().is_empty()
            || self
                .web_frame_ancestors
                .chars()
                .any(|c| c == ';' || c == ',' || c.is_control())
        {
            return invalid(
                "web_frame_ancestors",
                "must be CSP sources separated by spaces, e.g. `'self' https://booking.example` (or `'none'`)".into(),
            );
        }
        if self.log_format != "text" && self.log_format != "json" {
            return invalid("log_format", "must be `text` or `json`".into());
        }
        Ok(())
    }

    /// The admin key, the JWT secret and the VAPID key: configured, or read from (or generated
    /// into) the data directory so they survive restarts and `surechat token` can find the
    /// secret.
    pub fn resolve_secrets(&mut self) -> std::io::Result<()> {
        if self.admin_key.is_none() {
            self.admin_key = Some(stored_secret(&self.data.join("admin-key"))?);
        }
        if self.jwt_secret.is_none() {
            self.jwt_secret = Some(stored_secret(&self.data.join("jwt-secret"))?);
        }
        if self.vapid_private_key.is_none() {
            // Browsers' push subscriptions are bound to this key: it must outlive restarts.
            let path = self.data.join("vapid-key.pem");
            crate::reach::webpush::Vapid::load_or_create(&path)?;
            self.vapid_private_key = Some(std::fs::read_to_string(&path)?);
        }
        Ok(())
    }
}

/// Creates the data directory (and missing parents) with mode 0700: it holds the secrets and every
/// message. An existing directory is left as it is (its owner may have chosen its mode).
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Reads a secret file, creating it with 32 random bytes (hex) and mode 0600 if absent.
fn stored_secret(path: &std::path::Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir)?;
    }
    let secret = crate::auth::random_hex(32);
    let empty_file = path.exists();
    let mut options = std::fs::OpenOptions::new();
    // An empty file (e.g. truncated) is replaced: an empty secret would let anyone sign tokens.
    options
        .write(true)
        .create_new(!empty_file)
        .truncate(empty_file);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, secret.as_bytes())?;
            file.sync_all()?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let theirs = std::fs::read_to_string(path)?.trim().to_owned();
            if theirs.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} is empty",
                    path.display()
                )));
            }
            Ok(theirs)
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_env_and_validation_name_the_key() {
        let dir = std::env::temp_dir().join(format!("surechat-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9999\"\nmesage_bytes_max = 3\n").unwrap();
        let err = Config::from_file(&file).unwrap_err().to_string();
        assert!(err.contains("mesage_bytes_max"), "{err}");

        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9999\"\nmessage_bytes_max = 100\n",
        )
        .unwrap();
        let mut config = Config::from_file(&file).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.message_bytes_max, 100);
        config
            .apply_env([("SURECHAT_MESSAGE_BYTES_MAX".into(), "2048".into())])
            .unwrap();
        assert_eq!(config.message_bytes_max, 2048);
        let err = config
            .apply_env([("SURECHAT_HEARTBEAT_INTERVAL_MS".into(), "soon".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("heartbeat_interval_ms"), "{err}");
        config.message_bytes_max = 10 * 1024 * 1024;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("message_bytes_max"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Random configuration files and environments (every key, values of every type and edge)
    /// through parsing and validation: an error that names a key, never a panic.
    /// `SURECHAT_FUZZ_CASES` scales the count.
    #[test]
    fn random_config_files_and_env_never_panic() {
        let cases: usize = std::env::var("SURECHAT_FUZZ_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        let mut state = 0x000c_0f19_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const VALUES: &[&str] = &[
            "0",
            "1",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "1e999",
            "nan",
            "true",
            "\"\"",
            "\"x\"",
            "\"127.0.0.1:0\"",
            "[]",
            "[1, 2]",
            "{}",
            "{ a = 1 }",
            "\"\\u0000\"",
            "100",
            "65536",
            "9223372036854775807",
            "0.5",
        ];
        for _ in 0..cases {
            let mut text = String::new();
            let mut env = Vec::new();
            for _ in 0..next() % 6 {
                let key = ENV_KEYS[(next() % ENV_KEYS.len() as u64) as usize];
                let value = VALUES[(next() % VALUES.len() as u64) as usize];
                if next() % 2 == 0 {
                    text.push_str(&format!("{key} = {value}\n"));
                } else {
                    env.push((format!("SURECHAT_{}", key.to_uppercase()), value.to_owned()));
                }
            }
            if next() % 10 == 0 {
                text.insert_str((next() as usize) % (text.len() + 1), "[[");
            }
            let Ok(mut config) = toml::from_str::<Config>(&text) else {
                continue;
            };
            if config.apply_env(env).is_ok() && config.validate().is_ok() {
                // What a valid configuration is used for must not overflow either.
                let now = std::time::Instant::now();
                let _ =
                    now + std::time::Duration::from_millis(
                        config.heartbeat_interval_ms + config.heartbeat_grace_ms,
                    ) + std::time::Duration::from_millis(config.connection_write_stall_ms);
            }
        }
    }
}
