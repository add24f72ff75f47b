pub mod oidc;
pub mod password;
pub mod totp;
