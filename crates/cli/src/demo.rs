//! `surechat demo`: the server with a ready booking, one client and one operator.

use protocol::api::ParticipantSpec;
use protocol::Role;
use server::store::ConversationChange;
use server::{now_ms, now_s, Config};

/// The demo booking's conversation id.
pub const BOOKING: &str = "booking-1001";
/// The demo client.
pub const CLIENT: &str = "ana";
/// The demo operator.
pub const OPERATOR: &str = "olga";
/// The demo operator's display name.
pub const OPERATOR_NAME: &str = "Olga";
/// Lifetime of the demo tokens: 30 days.
const TOKEN_TTL_S: u64 = 30 * 24 * 3600;

/// Runs `surechat demo`.
pub fn demo(config: Config) -> anyhow::Result<()> {
    super::serve::init_logs(&config);
    super::serve::runtime()?.block_on(super::serve::run(config, |state, base| async move {
        // The demo operator is in the directory, so its token is accepted and clients see
        // its name (an entry an admin changed since is kept).
        if state.store.operator(OPERATOR.into()).await?.is_none() {
            let olga = protocol::api::Operator {
                id: OPERATOR.into(),
                name: OPERATOR_NAME.into(),
                avatar_url: None,
                active: true,
            };
            state.store.put_operator(olga).await?;
        }
        let participants = vec![
            ParticipantSpec { user_id: CLIENT.into(), role: Role::Client, email: None },
            ParticipantSpec { user_id: OPERATOR.into(), role: Role::Operator, email: None },
        ];
                state
            .store
            .create_conversation(BOOKING.into(), participants, state.config.participants_max, now_ms())
            .await?;
        // The booking data operators see next to the chat.
        let booking = ConversationChange {
            metadata: Some(serde_json::json!({
                "guest": "Ana Silva",
                "check_in": "2026-12-01",
                "nights": 3,
                "room": "Sea view double",
                "booking_status": "confirmed"
            })),
            by: "admin".into(),
            ..Default::default()
        };
        state.store.change_conversation(BOOKING.into(), booking, now_ms()).await?;
        let client = state.auth.mint(CLIENT, Role::Client, now_s(), TOKEN_TTL_S);
        // Scope `all`: the demo operator sees every conversation in the inbox.
        let operator = state.auth.mint_scoped(OPERATOR, Role::Operator, Some("all"), now_s(), TOKEN_TTL_S);
        let ws = base.replacen("http", "ws", 1) + "/v1/ws";
        println!("surechat demo: booking {BOOKING} with client {CLIENT} and operator {OPERATOR}");
        println!();
        println!("client {CLIENT} token:\n  {client}");
        println!("operator {OPERATOR} token:\n  {operator}");
        println!();
        println!("Connect a device: open a WebSocket to {ws} and send");
        println!("  {{\"type\":\"hello\",\"v\":1,\"token\":\"<token>\"}}");
        println!("Or use HTTP, e.g. as the client:");
        println!("  curl -H 'Authorization: Bearer {client}' {base}/v1/conversations");
        println!(
            "  curl -H 'Authorization: Bearer {client}' -H 'Content-Type: application/json' \\\n    -d '{{\"id\":\"'$(cat /proc/sys/kernel/random/uuid)'\",\"body\":\"Hello!\"}}' {base}/v1/conversations/{BOOKING}/messages"
        );
        // Tokens travel in the URL fragment, which browsers never send to the server.
        println!();
        println!("Open the chat in a browser:");
        println!("  client {CLIENT}:   {base}/web/demo/client.html#token={client}&conversation={BOOKING}");
        println!("  operator {OPERATOR}: {base}/web/console/#token={operator}&conversation={BOOKING}");
        println!("Press Ctrl-C to stop.");
        Ok(())
    }))
}
