//! An uploaded file: its content's SHA-256 (where the bytes are stored),
//! size, type and name, who uploaded it, and what it belongs to once
//! attached (a contract, a receipt). Files are never deleted or changed by
//! a command: a replaced document is a new file.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{RuleKind, RuleViolation};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub name: String,
    pub uploaded_by: Uuid,
}

/// What a file belongs to: `contract`, `receipt`, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub kind: String,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FileCommand {
    Register(FileMeta),
    Attach(Owner),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FileEvent {
    Uploaded(FileMeta),
    Attached(Owner),
}

impl DomainEvent for FileEvent {
    fn event_type(&self) -> String {
        match self {
            FileEvent::Uploaded(_) => "FileUploaded",
            FileEvent::Attached(_) => "FileAttached",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file exists already")]
    Exists,
    #[error("no such file")]
    NotFound,
    #[error("the file belongs to {} {} already", .0.kind, .0.id)]
    InUse(Owner),
}

impl RuleViolation for FileError {
    fn kind(&self) -> RuleKind {
        match self {
            FileError::NotFound => RuleKind::NotFound,
            _ => RuleKind::Conflict,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            FileError::Exists => "exists",
            FileError::NotFound => "not-found",
            FileError::InUse(_) => "file-in-use",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    pub meta: Option<FileMeta>,
    pub owner: Option<Owner>,
}

pub fn decide(state: &StoredFile, command: FileCommand) -> Result<Vec<FileEvent>, FileError> {
    match command {
        FileCommand::Register(meta) => {
            if state.meta.is_some() {
                return Err(FileError::Exists);
            }
            Ok(vec![FileEvent::Uploaded(meta)])
        }
        FileCommand::Attach(owner) => {
            state.meta.as_ref().ok_or(FileError::NotFound)?;
            match &state.owner {
                Some(current) if *current == owner => Ok(vec![]),
                Some(current) => Err(FileError::InUse(current.clone())),
                None => Ok(vec![FileEvent::Attached(owner)]),
            }
        }
    }
}

pub fn evolve(state: &mut StoredFile, event: &FileEvent) {
    match event {
        FileEvent::Uploaded(meta) => state.meta = Some(meta.clone()),
        FileEvent::Attached(owner) => state.owner = Some(owner.clone()),
    }
}

crate::decider_aggregate!(
    StoredFile,
    "file",
    FileCommand,
    FileEvent,
    FileError,
    decide,
    evolve
);
