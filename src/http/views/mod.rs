//! The API's response shapes: built from domain records, never the records
//! themselves, so the stored encoding can change without touching the wire
//! (and so each can carry its API schema).

mod audit;
mod mail;
mod projects;
mod users;

pub use audit::{AuditEntryView, GroupView};
pub use mail::OutboxEntryView;
pub use projects::{OrganizationView, ProjectView, ResourceView};
pub use users::UserView;
