//! The tokio driver: one task per client that owns the [`Session`] and a WebSocket, and runs
//! one visible loop over a closed set of inputs — app commands, the socket, connect results,
//! upload reports and the session's timer. The app talks to it through [`Client`] and hears
//! [`Event`]s. Uploads the session orders run as tasks of their own ([`crate::transfer`]) that
//! only report back; the session decides what happens next.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use protocol::frames::decode_server_frame;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::http::HttpBase;
use crate::outgoing::{self, FileError, OutgoingFile};
use crate::session::{
    Action, ChatMessage, Config, ConnectionStatus, DeliveryStatus, Event, OutboxFile, Session,
    Snapshot, UploadOrder, UploadProgress,
};
use crate::store::{FileToStore, LocalStore, StoreError};
use crate::token::TokenProvider;
use crate::transfer::{self, DownloadError, Files, Report, Transfer};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The result of a connect attempt: its id and the socket, if it opened.
type Opened = (u64, Option<Box<Ws>>);

/// How to start a client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// WebSocket URLs of the server (`ws://host:port/v1/ws`); with several, each reconnect
    /// attempt takes the next one.
    pub urls: Vec<String>,
    /// The user's token.
    pub token: String,
    /// The local store file; `None` keeps everything in memory (lost on restart).
    pub store: Option<PathBuf>,
    /// Session tunables (the seed is replaced by OS randomness unless `fixed_seed`).
    pub config: Config,
    /// Keep `config.seed` as given (for reproducible runs).
    pub fixed_seed: bool,
    /// Gets fresh tokens: asked shortly before the token expires and when the server refuses it.
    /// Without one, a refused token leaves the client `Expired` ([`Event::AuthExpired`]) until
    /// [`Client::set_token`].
    pub token_provider: Option<TokenProvider>,
    /// Most bytes per upload request (`PATCH`); a cut connection costs at most one. Chunks start
    /// at 512 KiB (or this, if smaller) and are then sized for the measured link: about 8 s
    /// each, at least 64 KiB, at most this (and `protocol::limits::UPLOAD_CHUNK_BYTES_MAX`).
    pub upload_chunk_bytes: usize,
    /// How long an HTTP request (upload or download) may make no progress before it is taken
    /// as dead, in milliseconds.
    pub http_idle_timeout_ms: u64,
}

/// Default largest upload request: 1 MiB.
pub const UPLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// Default time an HTTP request may make no progress: 30 s, as long as the server's heartbeat
/// interval and grace together (a half-open connection is found in the same time).
pub const HTTP_IDLE_TIMEOUT_MS: u64 = 30_000;

impl ClientOptions {
    /// Options for one server URL and a token, in memory, default tunables.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        ClientOptions {
            urls: vec![url.into()],
            token: token.into(),
            store: None,
            config: Config::default(),
            fixed_seed: false,
            token_provider: None,
            upload_chunk_bytes: UPLOAD_CHUNK_BYTES,
            http_idle_timeout_ms: HTTP_IDLE_TIMEOUT_MS,
        }
    }
}

/// Why the client could not start or send.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client task has stopped.
    #[error("the client has stopped")]
    Stopped,
    /// No server URL was given.
    #[error("no server URL")]
    NoUrl,
    /// A file of the message cannot be sent (nothing was stored).
    #[error(transparent)]
    File(#[from] FileError),
    /// A download gave no file.
    #[error(transparent)]
    Download(#[from] DownloadError),
}

enum Command {
    Send {
        id: String,
        conversation: String,
        body: String,
        files: Vec<OutboxFile>,
        deadline: Option<Instant>,
    },
    RetryFailed(oneshot::Sender<usize>),
    MarkRead(String, u64),
    Typing(String, bool),
    SetToken(String),
    Network(bool),
    Connect,
    Disconnect(oneshot::Sender<()>),
    Query(Box<dyn FnOnce(&Session) + Send>),
    Stop(oneshot::Sender<()>),
}

/// A handle to a running client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    store: Option<Arc<Mutex<LocalStore>>>,
    /// Where outbox files' bytes are kept (the store, or memory without one).
    files: Files,
    /// For downloads: the first server URL's HTTP API.
    transfer: Arc<Transfer>,
}

/// The HTTP side of each server URL.
fn transfers(options: &ClientOptions) -> Vec<Arc<Transfer>> {
    options
        .urls
        .iter()
        .map(|url| {
            Arc::new(Transfer::new(
                HttpBase::from_ws_url(url).map_err(|err| err.to_string()),
                Duration::from_millis(options.http_idle_timeout_ms.max(1)),
                options.upload_chunk_bytes,
            ))
        })
        .collect()
}

impl Client {
    /// Starts a client (restoring its outbox and cursors from the store) and connects.
    pub fn start(
        mut options: ClientOptions,
    ) -> Result<(Client, mpsc::Receiver<Event>), ClientError> {
        if options.urls.is_empty() {
            return Err(ClientError::NoUrl);
        }
        let (store, snapshot) = match &options.store {
            Some(path) => {
                let store = LocalStore::open(path)?;
                let snapshot = store.load()?;
                (Some(Arc::new(Mutex::new(store))), snapshot)
            }
            None => (None, Snapshot::default()),
        };
        if !options.fixed_seed {
            let mut seed = [0u8; 8];
            getrandom::fill(&mut seed).expect("the OS random source is available");
            options.config.seed = u64::from_le_bytes(seed);
        }
        let session = Session::restore(options.config.clone(), options.token.clone(), snapshot);
        let files = match &store {
            Some(store) => Files::Store(store.clone()),
            None => Files::Memory(Arc::default()),
        };
        let transfers = transfers(&options);
        let (commands, inbox) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(EVENTS_QUEUE_MAX);
        let mut driver = Driver {
            provider: options.token_provider,
            tokens: mpsc::unbounded_channel(),
            refreshing: false,
            refresh_timer: None,
            session,
            urls: options.urls,
            next_url: 0,
            ws: None,
            attempt: 0,
            store: store.clone(),
            unsaved: Vec::new(),
            events: events_tx,
            inbox,
            opened: mpsc::unbounded_channel(),
            files: files.clone(),
            transfers: transfers.clone(),
            uploads: Uploads::default(),
            upload_news: mpsc::unbounded_channel(),
        };
        driver.schedule_refresh(&options.token);
        tokio::spawn(driver.run());
        let client = Client {
            commands,
            store,
            files,
            transfer: transfers[0].clone(),
        };
        client.command(Command::Connect)?;
        Ok((client, events))
    }

    fn command(&self, command: Command) -> Result<(), ClientError> {
        self.commands
            .send(command)
            .map_err(|_| ClientError::Stopped)
    }

    /// Sends a message: it is durably in the outbox when this returns. Returns its id.
    pub fn send(&self, conversation: &str, body: &str) -> Result<String, ClientError> {
        self.send_with_deadline(conversation, body, None)
    }

    /// Like [`Client::send`], failing the message if it is not stored by `deadline`.
    pub fn send_with_deadline(
        &self,
        conversation: &str,
        body: &str,
        deadline: Option<Instant>,
    ) -> Result<String, ClientError> {
        self.enqueue(conversation, body, Vec::new(), deadline)
    }

    /// Sends a message with files (`body` may be empty): the message and the files' bytes are
    /// durably in the outbox, in one transaction, when this returns. Returns its id.
    ///
    /// Each file gets an upload id of its own; the files are uploaded (resuming after any cut)
    /// and the message is sent once all are complete. Until then the messages sent after it to
    /// the same conversation wait behind it, so the order is the order of the calls. Watch
    /// [`Event::UploadProgress`] or [`Client::upload_progress`]; a file the server refuses
    /// (`unsupported_type`, `attachment_too_large`) fails the message like any permanent
    /// refusal. Once the server has the message, the bytes are deleted from the local store.
    pub fn send_with_files(
        &self,
        conversation: &str,
        body: &str,
        files: Vec<OutgoingFile>,
    ) -> Result<String, ClientError> {
        outgoing::check(&files)?;
        self.enqueue(conversation, body, files, None)
    }

    /// Puts a message (with its files) in the outbox, durably, then hands it to the session.
    fn enqueue(
        &self,
        conversation: &str,
        body: &str,
        files: Vec<OutgoingFile>,
        deadline: Option<Instant>,
    ) -> Result<String, ClientError> {
        // Time-ordered ids (UUIDv7): storage's unique index of ids then grows at its end instead
        // of taking each id at a random place (the server accepts any UUID).
        let id = uuid::Uuid::now_v7().to_string();
        let described: Vec<OutboxFile> = files
            .iter()
            .map(|file| OutboxFile {
                upload_id: uuid::Uuid::now_v7().to_string(),
                name: file.name.clone(),
                content_type: file.content_type.clone(),
                length: file.bytes.len() as u64,
            })
            .collect();
        match (&self.store, &self.files) {
            (Some(store), _) => {
                let stored: Vec<FileToStore<'_>> = described
                    .iter()
                    .zip(&files)
                    .map(|(file, outgoing)| FileToStore {
                        file,
                        bytes: &outgoing.bytes,
                    })
                    .collect();
                store
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .add_outbox_with_files(&id, conversation, body, &stored)?;
            }
            (None, Files::Memory(memory)) => {
                let mut memory = memory.lock().unwrap_or_else(|p| p.into_inner());
                for (file, outgoing) in described.iter().zip(files) {
                    memory.insert(
                        file.upload_id.clone(),
                        (id.clone(), Arc::new(outgoing.bytes)),
                    );
                }
            }
            (None, Files::Store(_)) => unreachable!("files are kept in the store only with one"),
        }
        self.command(Command::Send {
            id: id.clone(),
            conversation: conversation.into(),
            body: body.into(),
            files: described,
            deadline,
        })?;
        Ok(id)
    }

    /// How far the files of outbox message `id` got; `None` once it left the outbox (or if it
    /// has no files).
    pub async fn upload_progress(&self, id: &str) -> Result<Option<UploadProgress>, ClientError> {
        let id = id.to_owned();
        self.query(move |s| s.upload_progress(&id)).await
    }

    /// Downloads an attachment (`ChatMessage::attachments[i].id`) whole, with the user's token.
    /// A file this user may not see is [`DownloadError::Refused`] with `not_found`, exactly like
    /// a missing one.
    pub async fn download(&self, attachment_id: &str) -> Result<Vec<u8>, ClientError> {
        let token = self.query(|s| s.token().to_owned()).await?;
        Ok(transfer::download(&self.transfer, &token, attachment_id).await?)
    }

    /// Queues failed messages again (same ids). Returns how many.
    pub async fn retry_failed(&self) -> Result<usize, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::RetryFailed(tx))?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Marks everything received in `conversation` as read.
    pub fn mark_read(&self, conversation: &str) -> Result<(), ClientError> {
        self.command(Command::MarkRead(conversation.into(), u64::MAX))
    }

    /// Marks what was received in `conversation` as read up to `seq` (the last message the
    /// reader saw).
    pub fn mark_read_up_to(&self, conversation: &str, seq: u64) -> Result<(), ClientError> {
        self.command(Command::MarkRead(conversation.into(), seq))
    }

    /// Sends a typing signal.
    pub fn set_typing(&self, conversation: &str, active: bool) -> Result<(), ClientError> {
        self.command(Command::Typing(conversation.into(), active))
    }

    /// Replaces the token (after [`Event::AuthExpired`], once the user signed in again): an
    /// `Expired` client continues at once and sends its outbox.
    pub fn set_token(&self, token: &str) -> Result<(), ClientError> {
        self.command(Command::SetToken(token.into()))
    }

    /// Tells the client the device's network went down or came back.
    pub fn set_network(&self, up: bool) -> Result<(), ClientError> {
        self.command(Command::Network(up))
    }

    /// Connects again after [`Client::disconnect`].
    pub fn connect(&self) -> Result<(), ClientError> {
        self.command(Command::Connect)
    }

    /// Closes the connection and stops reconnecting; the outbox is kept.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Disconnect(tx))?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Stops the client task (after closing the connection).
    pub async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Session) -> T + Send + 'static,
    ) -> Result<T, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Query(Box::new(move |session| {
            let _ = tx.send(f(session));
        })))?;
        rx.await.map_err(|_| ClientError::Stopped)
    }

    /// Messages not yet durable on the server.
    pub async fn pending_count(&self) -> Result<usize, ClientError> {
        self.query(|s| s.pending_count()).await
    }

    /// Messages still on their way (the outbox without failed ones).
    pub async fn waiting_count(&self) -> Result<usize, ClientError> {
        self.query(|s| s.waiting_count()).await
    }

    /// A conversation's messages, held ones by `seq`, then the outbox's.
    pub async fn messages(&self, conversation: &str) -> Result<Vec<ChatMessage>, ClientError> {
        let conversation = conversation.to_owned();
        self.query(move |s| s.messages(&conversation)).await
    }

    /// A one-screen account of the session's state, for diagnostics (see [`Session::describe`]).
    pub async fn describe(&self) -> Result<String, ClientError> {
        self.query(|s| s.describe(Instant::now())).await
    }

    /// The connection status.
    pub async fn status(&self) -> Result<ConnectionStatus, ClientError> {
        self.query(|s| s.status()).await
    }

    /// Conversations known to the device.
    pub async fn conversations(&self) -> Result<Vec<String>, ClientError> {
        self.query(|s| s.conversation_ids()).await
    }

    /// A conversation's contiguous cursor.
    pub async fn cursor(&self, conversation: &str) -> Result<u64, ClientError> {
        let conversation = conversation.to_owned();
        self.query(move |s| s.cursor(&conversation)).await
    }
}

struct Driver {
    session: Session,
    provider: Option<TokenProvider>,
    /// The refresh timer's and the provider's news (a channel of its own, so that the loop
    /// still ends when the app drops every `Client`).
    tokens: (
        mpsc::UnboundedSender<TokenNews>,
        mpsc::UnboundedReceiver<TokenNews>,
    ),
    /// A provider call is in flight.
    refreshing: bool,
    /// The refresh scheduled before the token expires.
    refresh_timer: Option<tokio::task::JoinHandle<()>>,
    urls: Vec<String>,
    next_url: usize,
    ws: Option<Ws>,
    /// The attempt the current socket belongs to.
    attempt: u64,
    store: Option<Arc<Mutex<LocalStore>>>,
    /// Events the store failed to persist, stored again in front of the next ones.
    unsaved: Vec<Event>,
    /// Events for the app, at most `EVENTS_QUEUE_MAX` unread.
    events: mpsc::Sender<Event>,
    /// The app's calls. Unbounded so that `send` stays a plain call: each command is one call of
    /// the app (a sent message is in the outbox store before it is queued here), and the driver
    /// takes them as fast as it loops.
    inbox: mpsc::UnboundedReceiver<Command>,
    opened: (
        mpsc::UnboundedSender<Opened>,
        mpsc::UnboundedReceiver<Opened>,
    ),
    /// Where outbox files' bytes are read from.
    files: Files,
    /// The HTTP side of each server URL (uploads go to the one of the latest connection).
    transfers: Vec<Arc<Transfer>>,
    /// Uploads running, by attempt.
    uploads: Uploads,
    /// What the upload tasks report: attempt and report.
    upload_news: (
        mpsc::UnboundedSender<UploadNews>,
        mpsc::UnboundedReceiver<UploadNews>,
    ),
}

/// An upload task's report, with the attempt it belongs to.
type UploadNews = (u64, Report);

/// The upload tasks, by attempt; stopped when cancelled and when the driver ends, so nothing
/// uploads for a client that is gone.
#[derive(Default)]
struct Uploads(HashMap<u64, tokio::task::JoinHandle<()>>);

impl Uploads {
    fn cancel(&mut self, attempt: u64) {
        if let Some(task) = self.0.remove(&attempt) {
            task.abort();
        }
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        for task in self.0.values() {
            task.abort();
        }
    }
}

/// Events the app has not read yet before the driver waits for it to read (and so stops reading
/// its socket: the server then closes the connection as too slow, and the driver resumes from its
/// cursors once the app reads again).
pub const EVENTS_QUEUE_MAX: usize = 4096;

/// News about the token, from the refresh timer and the provider.
enum TokenNews {
    /// The token nears its expiry: time to ask the provider.
    Due,
    /// What the provider answered.
    Answer(Result<String, String>),
}

/// One input of the driver loop.
enum Input {
    Token(TokenNews),
    Command(Option<Command>),
    Opened(u64, Option<Box<Ws>>),
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    Upload(u64, Report),
    Timer,
}

impl Driver {
    /// Asks the provider for a token, unless a call is in flight or there is no provider.
    fn refresh(&mut self) {
        let Some(provider) = &self.provider else {
            return;
        };
        if self.refreshing {
            return;
        }
        self.refreshing = true;
        let (fetch, news) = (provider.fetch(), self.tokens.0.clone());
        tokio::spawn(async move {
            let _ = news.send(TokenNews::Answer(fetch.await));
        });
    }

    /// With a provider, plans the next refresh shortly before `token` expires.
    fn schedule_refresh(&mut self, token: &str) {
        if let Some(timer) = self.refresh_timer.take() {
            timer.abort();
        }
        let (Some(_), Some(wait)) = (&self.provider, crate::token::refresh_in(token)) else {
            return;
        };
        let news = self.tokens.0.clone();
        self.refresh_timer = Some(tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = news.send(TokenNews::Due);
        }));
    }

    async fn run(mut self) {
        loop {
            self.drain().await;
            let deadline = self
                .session
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let input = tokio::select! {
                command = self.inbox.recv() => Input::Command(command),
                Some((attempt, ws)) = self.opened.1.recv() => Input::Opened(attempt, ws),
                frame = next_frame(&mut self.ws) => Input::Frame(frame),
                Some(news) = self.tokens.1.recv() => Input::Token(news),
                Some((attempt, report)) = self.upload_news.1.recv() => Input::Upload(attempt, report),
                _ = sleep_until(deadline) => Input::Timer,
            };
            let now = Instant::now();
            match input {
                Input::Command(None) => return,
                Input::Command(Some(command)) => {
                    if !self.command(now, command).await {
                        return;
                    }
                }
                // A socket of an attempt the session gave up on (it timed out, another began) is
                // closed, never used: it did not say hello.
                Input::Opened(attempt, Some(ws)) if !self.session.is_opening(attempt) => {
                    let mut ws = *ws;
                    tokio::spawn(async move {
                        let _ = ws.close(None).await;
                    });
                }
                Input::Opened(attempt, Some(ws)) => {
                    self.ws = Some(*ws);
                    self.attempt = attempt;
                    self.session.handle_open(now, attempt);
                }
                Input::Opened(attempt, None) => self.session.handle_close(now, attempt, None),
                Input::Frame(Some(Ok(WsMessage::Text(text)))) => {
                    match decode_server_frame(text.as_str()) {
                        Ok(frame) => self.session.handle_frame(now, frame),
                        Err(err) => tracing::warn!(%err, "undecodable frame from the server"),
                    }
                }
                Input::Frame(Some(Ok(WsMessage::Close(frame)))) => {
                    self.ws = None;
                    self.session
                        .handle_close(now, self.attempt, frame.map(|f| u16::from(f.code)));
                }
                Input::Frame(Some(Ok(_))) => {}
                Input::Frame(Some(Err(_)) | None) => {
                    self.ws = None;
                    self.session.handle_close(now, self.attempt, None);
                }
                Input::Timer => self.session.handle_timeout(now),
                Input::Upload(attempt, report) => match report {
                    Report::Progress(offset) => {
                        self.session.handle_upload_progress(now, attempt, offset)
                    }
                    Report::Done => {
                        self.uploads.0.remove(&attempt);
                        self.session.handle_upload_done(now, attempt);
                    }
                    Report::Failed(failure) => {
                        self.uploads.0.remove(&attempt);
                        self.session.handle_upload_failed(now, attempt, failure);
                    }
                },
                Input::Token(TokenNews::Due) => self.refresh(),
                Input::Token(TokenNews::Answer(answer)) => {
                    self.refreshing = false;
                    match answer {
                        Ok(token) => {
                            self.schedule_refresh(&token);
                            self.session.set_token(now, token);
                        }
                        Err(why) => {
                            tracing::warn!(%why, "the token provider gave no token; the user must sign in again");
                            let _ = self.events.send(Event::AuthExpired).await;
                        }
                    }
                }
            }
        }
    }

    /// Handles an app command; `false` stops the loop.
    async fn command(&mut self, now: Instant, command: Command) -> bool {
        match command {
            Command::Send {
                id,
                conversation,
                body,
                files,
                deadline,
            } => {
                self.session
                    .send_with_files(now, id, &conversation, &body, files, deadline);
            }
            Command::RetryFailed(reply) => {
                let _ = reply.send(self.session.retry_failed(now));
            }
            Command::MarkRead(conversation, seq) => {
                self.session.mark_read_up_to(now, &conversation, seq)
            }
            Command::Typing(conversation, active) => {
                self.session.set_typing(now, &conversation, active)
            }
            Command::SetToken(token) => {
                self.schedule_refresh(&token);
                self.session.set_token(now, token);
            }
            Command::Network(up) => self.session.handle_network(now, up),
            Command::Connect => self.session.connect(now),
            Command::Disconnect(reply) => {
                self.session.disconnect(now);
                self.drain().await;
                let _ = reply.send(());
            }
            Command::Query(f) => f(&self.session),
            Command::Stop(reply) => {
                self.session.disconnect(now);
                self.drain().await;
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    /// Carries out what the session asked for: transport actions, then events (persisted
    /// before anything is written, so receipts follow storage), then frames.
    async fn drain(&mut self) {
        while let Some(action) = self.session.poll_action() {
            match action {
                Action::Connect { attempt } => {
                    self.ws = None;
                    let url = self.urls[self.next_url % self.urls.len()].clone();
                    self.next_url += 1;
                    let opened = self.opened.0.clone();
                    tokio::spawn(async move {
                        let ws = tokio_tungstenite::connect_async(url)
                            .await
                            .ok()
                            .map(|(ws, _)| Box::new(ws));
                        let _ = opened.send((attempt, ws));
                    });
                }
                Action::Disconnect => {
                    if let Some(mut ws) = self.ws.take() {
                        tokio::spawn(async move {
                            let _ = ws.close(None).await;
                        });
                    }
                }
                Action::Upload(order) => self.start_upload(order),
                Action::CancelUpload { attempt } => self.uploads.cancel(attempt),
            }
        }
        let mut events = Vec::new();
        while let Some(event) = self.session.poll_event() {
            events.push(event);
        }
        if !events.is_empty() || !self.unsaved.is_empty() {
            // What could not be stored before goes first, so the store never has a hole.
            let mut batch = std::mem::take(&mut self.unsaved);
            batch.extend(events.iter().cloned());
            let persisted = match &self.store {
                Some(store) => {
                    let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(user) = self.session.user_id() {
                        let _ = store.set_user(user);
                    }
                    store.apply(&batch)
                }
                None => Ok(()),
            };
            if let Err(err) = persisted {
                // Nothing may be acknowledged that is not on disk: the session takes back its
                // receipts and hands the messages over again later; the connection stays.
                tracing::error!(%err, "cannot persist the session's changes; retrying later");
                self.unsaved = batch;
                self.session.handle_store_failure(Instant::now());
            }
            for event in events {
                if let Event::DeliveryStatus {
                    id,
                    status: DeliveryStatus::Sent { .. },
                    ..
                } = &event
                {
                    self.files.forget_message(id);
                }
                if event == Event::TokenExpired {
                    self.refresh();
                    if self.provider.is_none() {
                        let _ = self.events.send(Event::TokenExpired).await;
                        let _ = self.events.send(Event::AuthExpired).await;
                        continue;
                    }
                }
                // An app that stops reading events makes the driver wait here (and stop reading
                // its socket) rather than buffer without bound.
                let _ = self.events.send(event).await;
            }
        }
        let mut wrote = false;
        while let Some(frame) = self.session.poll_transmit() {
            let Some(ws) = self.ws.as_mut() else { continue };
            if ws.feed(WsMessage::text(frame.encode())).await.is_err() {
                self.ws = None;
                self.session
                    .handle_close(Instant::now(), self.attempt, None);
                return Box::pin(self.drain()).await;
            }
            wrote = true;
        }
        if wrote {
            if let Some(ws) = self.ws.as_mut() {
                if ws.flush().await.is_err() {
                    self.ws = None;
                    self.session
                        .handle_close(Instant::now(), self.attempt, None);
                    Box::pin(self.drain()).await;
                }
            }
        }
    }
}

impl Driver {
    /// Runs an upload the session ordered, against the server of the latest connection attempt,
    /// with the current token; its reports come back as [`Input::Upload`].
    fn start_upload(&mut self, order: UploadOrder) {
        let count = self.transfers.len();
        let transfer = self.transfers[(self.next_url + count - 1) % count].clone();
        let token = self.session.token().to_owned();
        let files = self.files.clone();
        let news = self.upload_news.0.clone();
        let attempt = order.attempt;
        let task = tokio::spawn(async move {
            let progress = news.clone();
            let report = move |report: Report| {
                let _ = progress.send((attempt, report));
            };
            let outcome = transfer::upload(&transfer, &token, &order, &files, &report).await;
            let _ = news.send((
                attempt,
                match outcome {
                    Ok(()) => Report::Done,
                    Err(failure) => Report::Failed(failure),
                },
            ));
        });
        self.uploads.0.insert(attempt, task);
    }
}

async fn next_frame(
    ws: &mut Option<Ws>,
) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
    match ws.as_mut() {
        Some(ws) => ws.next().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
