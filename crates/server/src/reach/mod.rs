pub mod webpush;
