//! The checks of the push and email settings, run with the rest of [`Config::validate`].

use crate::config::ConfigError;
use crate::Config;

impl Config {
    /// Checks the settings of [`crate::reach`]; the error names the first bad key.
    pub(crate) fn validate_reach(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if self.reach_interval_ms < 10 {
            return invalid("reach_interval_ms", "must be at least 10");
        }
        if self.push_ttl_s == 0 || self.push_ttl_s > 28 * 24 * 3600 {
            return invalid("push_ttl_s", "must be between 1 and 2419200 (28 days)");
        }
        for (key, url) in [
            ("public_url", &self.public_url),
            ("email_link_base", &self.email_link_base),
        ] {
            if let Some(url) = url {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return invalid(key, "must be an http:// or https:// URL");
                }
            }
        }
        if let Some(subject) = &self.push_subject {
            if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
                return invalid("push_subject", "must be a mailto: or https: URL");
            }
        }
        if let Some(pem) = &self.vapid_private_key {
            if let Err(err) = super::webpush::Vapid::from_pem(pem) {
                return Err(ConfigError::Invalid {
                    key: "vapid_private_key",
                    message: format!("not a P-256 private key in PEM: {err}"),
                });
            }
        }
        if self
            .smtp_security
            .parse::<super::email::Security>()
            .is_err()
        {
            return invalid("smtp_security", "must be `starttls`, `tls` or `none`");
        }
        if self.smtp_host.is_some() {
            match &self.email_from {
                None => return invalid("email_from", "is required with smtp_host"),
                Some(from) if !from.contains('@') => {
                    return invalid("email_from", "must be an email address")
                }
                Some(_) => {}
            }
            if self.smtp_port == 0 {
                return invalid("smtp_port", "must be between 1 and 65535");
            }
        }
        if self.smtp_password.is_some() && self.smtp_username.is_none() {
            return invalid("smtp_username", "is required with smtp_password");
        }
        if !(100..=20_000).contains(&self.smtp_timeout_ms) {
            // Within the sending node's lease (30 s), renewed before each delivery.
            return invalid("smtp_timeout_ms", "must be between 100 and 20000");
        }
        if self.email_link_ttl_ms < 1_000 {
            return invalid("email_link_ttl_ms", "must be at least 1000");
        }
        Ok(())
    }
}
