//! The server started in-process on an ephemeral port, over each storage backend. Integration
//! tests are written once as `async fn name(backend: Backend)` and instantiated per backend by
//! [`backend_tests!`].
#![allow(dead_code)]

use std::sync::Arc;

use protocol::Role;
use serde_json::json;
use server::store::memory::MemoryStore;
use server::store::postgres::{drop_schema, fresh_schema, PgOptions, PgStore};
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::store::Store;
use server::{AppState, Config};
use testkit::{Device, Http};
use tokio_util::sync::CancellationToken;

/// The admin key of test servers.
pub const ADMIN: &str = "test-admin-key-0123456789";
/// The JWT secret of test servers.
pub const SECRET: &str = "test-jwt-secret-0123456789abcdef0123";

/// A storage backend.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// [`MemoryStore`].
    Memory,
    /// [`SqliteStore`] in a temporary directory.
    Sqlite,
    /// [`PgStore`] in a fresh schema of the machine's PostgreSQL (database `test`, or
    /// `SURECHAT_TEST_DATABASE`).
    Postgres,
}

/// The database PostgreSQL tests use.
pub fn test_database() -> String {
    std::env::var("SURECHAT_TEST_DATABASE")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
}

/// A fresh PostgreSQL schema, dropped when this is dropped.
pub struct Schema {
    /// A URL whose connections use the schema.
    pub url: String,
    name: String,
}

impl Schema {
    /// Creates one.
    pub async fn new() -> Schema {
        let (url, name) = fresh_schema(&test_database(), "surechat_test")
            .await
            .expect("PostgreSQL answers on 127.0.0.1:5432");
        Schema { url, name }
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop cannot await: clean up on a thread of its own, with its own runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = runtime.block_on(drop_schema(&test_database(), &name));
        })
        .join();
    }
}

/// What a backend needs kept alive next to its store.
pub enum Keep {
    /// Nothing.
    Nothing,
    /// A PostgreSQL schema.
    Schema(Schema),
}

impl Backend {
    /// A fresh store; the directory (if any) must outlive it.
    pub async fn store(self, dir: &std::path::Path) -> (Arc<dyn Store>, Keep) {
        match self {
            Backend::Memory => (Arc::new(MemoryStore::new()), Keep::Nothing),
            Backend::Sqlite => (
                Arc::new(SqliteStore::open(dir, SqliteOptions::default()).expect("opening sqlite")),
                Keep::Nothing,
            ),
            Backend::Postgres => {
                let schema = Schema::new().await;
                let store = PgStore::connect(&schema.url, PgOptions::default())
                    .await
                    .expect("connecting to PostgreSQL");
                (Arc::new(store), Keep::Schema(schema))
            }
        }
    }
}

/// Instantiates `async fn name(backend: Backend)` tests for every backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Memory).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Instantiates `async fn case(store: Arc<dyn Store>)` cases on a fresh store of every backend
/// (the store conformance suites).
#[macro_export]
macro_rules! store_tests {
    ($($case:ident),* $(,)?) => {
        $crate::store_tests!(@backend memory, Memory; $($case),*);
        $crate::store_tests!(@backend sqlite, Sqlite; $($case),*);
        $crate::store_tests!(@backend postgres, Postgres; $($case),*);
    };
    (@backend $module:ident, $variant:ident; $($case:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let (store, _keep) = $crate::common::Backend::$variant.store(dir.path()).await;
                    super::$case(store).await;
                }
            )*
        }
    };
}

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `ws://127.0.0.1:PORT/v1/ws`.
    pub ws: String,
    /// HTTP client for it.
    pub http: Http,
    /// The server's state.
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
    _keep: Keep,
}

/// The operators every test server has in its directory.
pub const DIRECTORY: &[&str] = &["olga", "omar", "oscar", "boss"];

impl TestServer {
    /// Starts a server with the default configuration.
    pub async fn start(backend: Backend) -> TestServer {
        Self::with_config(backend, |_| {}).await
    }

    /// Starts a server after `adjust` has changed its configuration.
    pub async fn with_config(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = Config {
            admin_key: Some(ADMIN.into()),
            jwt_secret: Some(SECRET.into()),
            data: dir.path().to_owned(),
            ..Config::default()
        };
        adjust(&mut config);
        config.validate().expect("a valid test configuration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding");
        let address = listener.local_addr().unwrap();
        let (store, keep) = backend.store(dir.path()).await;
        // The operators the tests use are in the directory, named by their ids.
        for id in DIRECTORY {
            store
                .put_operator(protocol::api::Operator {
                    id: (*id).into(),
                    name: (*id).into(),
                    avatar_url: None,
                    active: true,
                })
                .await
                .expect("registering an operator");
        }
        let state = AppState::new(config, store, CancellationToken::new());
        let task = tokio::spawn(server::run(listener, state.clone()));
        let base = format!("http://{address}");
        TestServer {
            http: Http::new(&base),
            ws: format!("ws://{address}/v1/ws"),
            base,
            state,
            task,
            _dir: dir,
            _keep: keep,
        }
    }

    /// A token for `user` with `role`, valid for an hour.
    pub fn token(&self, user: &str, role: Role) -> String {
        self.state.auth.mint(user, role, server::now_s(), 3600)
    }

    /// Creates a conversation through the admin API; panics unless 201 or 200.
    pub async fn conversation(&self, id: &str, participants: &[(&str, Role)]) {
        let participants: Vec<_> = participants
            .iter()
            .map(|(user, role)| json!({"user_id": user, "role": role}))
            .collect();
        let response = self
            .http
            .json(
                "POST",
                "/v1/conversations",
                Some(ADMIN),
                &json!({"id": id, "participants": participants}),
            )
            .await;
        assert!(
            matches!(response.status, 200 | 201),
            "creating {id}: {} {}",
            response.status,
            response.body
        );
    }

    /// The usual pair: conversation `id` with client `ana` and operator `olga`.
    pub async fn booking(&self, id: &str) {
        self.conversation(id, &[("ana", Role::Client), ("olga", Role::Operator)])
            .await;
    }

    /// Connects a device of `user`.
    pub async fn device(&self, user: &str, role: Role) -> Device {
        Device::connect(&self.ws, &self.token(user, role), Vec::new()).await
    }

    /// Shuts the server down gracefully and waits for it.
    pub async fn shutdown(self) {
        self.state.shutdown.cancel();
        self.task
            .await
            .expect("the server task")
            .expect("the server stops cleanly");
    }
}
