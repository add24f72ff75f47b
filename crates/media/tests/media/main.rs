//! The crate's behaviour on files made here, in code: each test builds its input (an image from
//! the `image` encoders, metadata written byte by byte) so no binary fixture hides what is tested.

mod files;
mod gif;
mod jpeg;
mod limits;
mod png;
mod sniff;
mod webp;
