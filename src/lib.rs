//! gatehouse: an account directory daemon. Users, their lifecycle, tokens, groups
//! and audit trail in an embedded store, served through an HTTP admin API.
//!
//! Layers (see ARCHITECTURE.md): `domain` holds pure rules, `store` is the only
//! module touching sled, `service` holds the use cases every transport calls,
//! `http` translates the admin API, and `app` wires them together.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod client;
pub mod config;
pub mod domain;
pub mod ftp;
pub mod host;
pub mod http;
pub mod ldap;
pub mod mail;
pub mod media;
pub mod service;
pub mod sso;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;
