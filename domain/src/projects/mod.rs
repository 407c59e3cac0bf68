//! Client projects: the `ProjectRequest` aggregate for a project's whole
//! life, and the portal around it (feedback, messages to clients, the
//! products roadmap).

pub mod portal;
pub mod request;

#[cfg(test)]
mod tests;

pub use request::{
    Agreement, Attachment, ProjectCommand, ProjectError, ProjectEvent, ProjectRequest,
    ProjectState, Request,
};
