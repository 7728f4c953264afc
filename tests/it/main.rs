//! The one integration test binary: starts the real daemon in-process on
//! loopback port 0 and drives it with a real HTTP client.

mod backup;
mod cli;
mod durability;
mod exchange;
mod field;
mod field_media;
mod ftp;
mod ftp_peers;
mod ftp_races;
mod harness;
mod ldap;
mod lifecycle;
mod limits;
mod mail;
mod mail_crash;
mod mail_delivery;
mod migrate_store;
mod oidc;
mod openapi;
mod ops;
mod postgres;
mod process;
mod projects;
mod scale_out;
mod signin;
mod slapd;
mod smtp;
mod sso;
mod store_contract;
mod tokens;
mod users;
mod web;
mod web_projects;
