pub mod email;
pub mod webpush;
