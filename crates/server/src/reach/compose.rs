//! What a push and an email say: pure functions of a decision, so every retry sends the same
//! bytes and tests read them without a network. The texts are English; a deployment that needs
//! another language puts its own words in front of surechat's webhooks (`message.unread_timeout`).

use protocol::Role;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::policy::Decision;
use crate::store::reach::ReachFacts;

/// The JSON a push carries (encrypted for the browser); the demo's service worker shows it.
pub fn push_payload(facts: &ReachFacts, decision: &Decision, with_body: bool, url: &str) -> String {
    let newest = facts
        .unread
        .iter()
        .rev()
        .find(|m| m.seq <= decision.up_to_seq);
    let (title, generic) = match facts.role {
        Role::Client => (
            "New message".to_owned(),
            format!("New message about booking {}", facts.conversation_id),
        ),
        Role::Operator => (
            format!("New message in {}", facts.conversation_id),
            format!("A guest wrote about booking {}", facts.conversation_id),
        ),
    };
    let body = match newest {
        // A message of only attachments has no text to show: the generic line says enough.
        Some(message)
            if with_body && message.seq == decision.up_to_seq && !message.body.is_empty() =>
        {
            message.body.clone()
        }
        _ => generic,
    };
    json!({
        "type": "message",
        "conversation_id": facts.conversation_id,
        "seq": decision.up_to_seq,
        "title": title,
        "body": body,
        "url": url,
    })
    .to_string()
}

/// An email as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailContent {
    /// Recipient.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
    /// The RFC 8058 one-click unsubscribe URL.
    pub unsubscribe_url: String,
}

/// The email that tells a client of unread operator messages. `names` gives an operator's
/// display name for their id.
pub fn email(
    facts: &ReachFacts,
    decision: &Decision,
    to: &str,
    with_bodies: bool,
    link: &str,
    unsubscribe_url: &str,
    names: impl Fn(&str) -> String,
) -> EmailContent {
    let booking = &facts.conversation_id;
    let count = facts
        .unread_count
        .max(decision.messages.len() as u64)
        .max(1);
    let mut text = String::from("Hello,\n\n");
    if with_bodies && !decision.messages.is_empty() {
        text.push_str(&format!(
            "You have a reply about your booking {booking}:\n\n"
        ));
        for message in &decision.messages {
            text.push_str(&format!("{} wrote:\n", names(&message.sender_id)));
            if message.body.is_empty() {
                text.push_str("> (a file: open the conversation to see it)\n");
            }
            for line in message.body.lines() {
                text.push_str("> ");
                text.push_str(line);
                text.push('\n');
            }
            text.push('\n');
        }
        let shown = decision.messages.len() as u64;
        if count > shown {
            text.push_str(&format!("… and {} more.\n\n", count - shown));
        }
    } else {
        let messages = if count == 1 { "message" } else { "messages" };
        text.push_str(&format!(
            "You have {count} unread {messages} about your booking {booking}.\n\n"
        ));
    }
    text.push_str(&format!(
        "Open the conversation to read and answer:\n{link}\n\nThis link opens the conversation once.\n\n-- \nYou get this email because you have a conversation about booking {booking}.\nStop these emails: {unsubscribe_url}\n"
    ));
    EmailContent {
        to: to.to_owned(),
        subject: format!("New reply about your booking {booking}"),
        text,
        unsubscribe_url: unsubscribe_url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::reach::{Channel, UnreadMessage};

    fn facts(role: Role) -> ReachFacts {
        let unread = vec![
            UnreadMessage {
                seq: 4,
                sender_id: "op-1".into(),
                sender_role: Role::Operator,
                body: "Your room is ready.\nCheck-in from 3 pm.".into(),
                created_at: 0,
            },
            UnreadMessage {
                seq: 6,
                sender_id: "op-1".into(),
                sender_role: Role::Operator,
                body: "Parking is free.".into(),
                created_at: 1,
            },
        ];
        ReachFacts {
            conversation_id: "B-77".into(),
            user_id: "guest".into(),
            role,
            read_seq: 3,
            subscriptions: 1,
            email: Some("guest@example.com".into()),
            pushed_up_to: 0,
            emailed_up_to: 0,
            emailed_at: 0,
            last_unread_seq: 6,
            unread_count: 3,
            unread,
        }
    }

    fn decision(facts: &ReachFacts, channel: Channel) -> Decision {
        Decision {
            channel,
            first_seq: 4,
            up_to_seq: 6,
            messages: facts.unread.clone(),
        }
    }

    #[test]
    fn pushes_say_only_that_something_came_unless_bodies_are_allowed() {
        let f = facts(Role::Client);
        let d = decision(&f, Channel::Push);
        let quiet: serde_json::Value =
            serde_json::from_str(&push_payload(&f, &d, false, "https://x/y")).unwrap();
        assert_eq!(quiet["body"], "New message about booking B-77");
        assert_eq!(quiet["conversation_id"], "B-77");
        assert_eq!(quiet["seq"], 6);
        assert_eq!(quiet["url"], "https://x/y");
        let told: serde_json::Value =
            serde_json::from_str(&push_payload(&f, &d, true, "https://x/y")).unwrap();
        assert_eq!(told["body"], "Parking is free.");
    }

    #[test]
    fn emails_quote_the_unread_messages_or_only_count_them() {
        let f = facts(Role::Client);
        let d = decision(&f, Channel::Email);
        let name = |id: &str| {
            if id == "op-1" {
                "Maria".into()
            } else {
                id.into()
            }
        };
        let full = email(
            &f,
            &d,
            "guest@example.com",
            true,
            "https://l",
            "https://u",
            name,
        );
        assert_eq!(full.subject, "New reply about your booking B-77");
        assert!(full
            .text
            .contains("Maria wrote:\n> Your room is ready.\n> Check-in from 3 pm.\n"));
        assert!(full.text.contains("> Parking is free."));
        assert!(full.text.contains("… and 1 more."));
        assert!(full.text.contains("https://l") && full.text.contains("https://u"));
        let private = email(
            &f,
            &d,
            "guest@example.com",
            false,
            "https://l",
            "https://u",
            name,
        );
        assert!(!private.text.contains("Parking"));
        assert!(private
            .text
            .contains("You have 3 unread messages about your booking B-77."));
    }
}
