//! Adapters: implementations of the ports over real services.

pub mod http;
pub mod s3;
