//! Uploaded files: `POST /files` (multipart, field `file`) stores the bytes
//! by their hash and records the file; `GET /files/{id}` serves them to
//! those who may see what the file belongs to.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use annals_domain::files::{FileMeta, StoredFile};
use annals_domain::user::Role;

use super::super::command::{reply, IdempotencyParams};
use super::super::error::{Forbidden, NotFound, Unauthorized};
use super::super::extract::path_uuid;
use super::super::{
    ApiError, AppState, Caller, CommandAccepted, CommandCall, CommandHeaders, CommandProblems,
    CommonProblems,
};
use crate::app::marketing as workflows;
use crate::files::{check_type, sha256_hex, sniff, Refusal, MAX_FILE_BYTES};

/// The body limit of an upload: the file and the form around it.
pub const UPLOAD_LIMIT: usize = MAX_FILE_BYTES + 64 * 1024;

/// Who may read a payment's receipt: staff.
pub const RECEIPT_READERS: &[Role] = &[Role::Admin, Role::Manager, Role::Operator];

/// Who may read a file attached to a contract.
pub const CONTRACT_READERS: &[Role] = &[Role::Admin, Role::Manager];

/// The form, for the OpenAPI document.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The file: PDF, PNG, JPEG, GIF, WebP, Word, Excel, PowerPoint or
    /// OpenDocument, at most 10 MiB.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A file's bytes, for the OpenAPI document.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct FileContent(Vec<u8>);

#[derive(Serialize, ToSchema, Debug)]
pub struct FileAccepted {
    #[serde(flatten)]
    pub accepted: CommandAccepted,
    #[schema(value_type = String, format = Uuid)]
    pub file_id: Uuid,
    /// Hex SHA-256 of the content (where it is stored).
    pub sha256: String,
    pub size: u64,
    pub content_type: String,
    pub name: String,
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too-large",
        "Payload too large",
        format!("a file may have at most {MAX_FILE_BYTES} bytes"),
    )
}

fn unsupported(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        detail,
    )
}

/// The `file` field: its name, declared type and bytes (refused past the
/// limit while it is read, so nothing larger is ever held).
async fn read_file(request: Request) -> Result<(String, String, bytes::Bytes), ApiError> {
    let mut form = Multipart::from_request(request, &()).await.map_err(|_| {
        unsupported("the body must be multipart/form-data with a `file` field".into())
    })?;
    let bad_form = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::bad_request(format!("the form cannot be read: {}", e.body_text()))
        }
    };
    let mut found = None;
    while let Some(mut field) = form.next_field().await.map_err(bad_form)? {
        if field.name() != Some("file") {
            let name = field.name().unwrap_or_default().to_string();
            return Err(ApiError::invalid_field(
                name,
                "unknown field; the form has only `file`",
            ));
        }
        if found.is_some() {
            return Err(ApiError::invalid_field("file", "one file per upload"));
        }
        let name = field
            .file_name()
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "file".to_string());
        let declared = field.content_type().map(str::to_string);
        let mut content = bytes::BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
            if content.len() + chunk.len() > MAX_FILE_BYTES {
                return Err(too_large());
            }
            content.extend_from_slice(&chunk);
        }
        // A part without a type of its own (or a generic one) is taken for
        // what its content is.
        let declared = match declared.as_deref() {
            None | Some("application/octet-stream") => sniff(&name, &content)
                .unwrap_or("application/octet-stream")
                .to_string(),
            Some(given) => given.to_string(),
        };
        found = Some((name, declared, content.freeze()));
    }
    found.ok_or_else(|| ApiError::invalid_field("file", "is required"))
}

/// Upload a file (a contract's document, a receipt): stored by its
/// content's SHA-256, never changed or deleted; attach it by its id.
#[utoipa::path(post, path = "/files", tag = "files", security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    params(IdempotencyParams),
    responses((status = 201, description = "Stored", body = FileAccepted,
            headers(("Location" = String, description = "The file: /api/v1/files/{id}"))),
        CommonProblems, CommandProblems, Unauthorized, Forbidden))]
pub(super) async fn upload_file(
    State(app): State<AppState>,
    caller: Caller,
    headers: CommandHeaders,
    request: Request,
) -> Result<Response, ApiError> {
    let by = caller.principal()?.user_id;
    let (name, declared, content) = read_file(request).await?;
    let content_type = check_type(&declared, &content).map_err(|refusal| match refusal {
        Refusal::Type(t) => unsupported(format!(
            "{t} is not accepted; accepted: {}",
            crate::files::allowed_types().join(", ")
        )),
        Refusal::Content(t) => unsupported(format!("the content is not {t}")),
    })?;
    let digest =
        sha256_hex(format!("{name}\u{0}{content_type}\u{0}{}", sha256_hex(&content)).as_bytes());
    let call = CommandCall::new(caller, headers, "POST", "/files", digest);
    let size = content.len() as u64;
    let sha256 = app.platform.files.put(content).await?;
    let meta = FileMeta {
        sha256: sha256.clone(),
        size,
        content_type: content_type.clone(),
        name: name.clone(),
        uploaded_by: by,
    };
    let done = workflows::register_file(&app.platform, &call.context(), meta).await;
    let location = done
        .as_ref()
        .ok()
        .map(|d| format!("/api/v1/files/{}", d.value));
    let mut response = reply(StatusCode::CREATED, done, |d| FileAccepted {
        accepted: CommandAccepted::of(d),
        file_id: d.value,
        sha256: sha256.clone(),
        size,
        content_type: content_type.clone(),
        name: name.clone(),
    });
    if let Some(value) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Download a file: a contract's document by those who may read contracts
/// (admin, manager); a file not attached yet by its uploader or an admin.
#[utoipa::path(get, path = "/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The file")),
    responses((status = 200, description = "The content, as a download",
            content_type = "application/octet-stream", body = FileContent,
            headers(
                ("X-Annals-Content-Type" = String, description = "The type it was uploaded as (application/pdf, ...)"),
                ("Content-Disposition" = String, description = "attachment; filename=\"...\""),
            )),
        Unauthorized, Forbidden, NotFound, CommonProblems))]
pub(super) async fn download_file(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let me = caller.principal()?.clone();
    let id = path_uuid("id", &id)?;
    // From its own stream: a file is readable the moment it is recorded.
    let (file, _) = app
        .platform
        .commands
        .load::<StoredFile>(&id.to_string())
        .await?;
    let meta = file
        .meta
        .ok_or_else(|| ApiError::not_found("no such file"))?;
    let allowed = match &file.owner {
        Some(owner) if owner.kind == "contract" => CONTRACT_READERS.iter().any(|r| me.has(*r)),
        Some(owner) if owner.kind == "receipt" => RECEIPT_READERS.iter().any(|r| me.has(*r)),
        Some(owner) if owner.kind == crate::app::projects::PROJECT_FILE => {
            crate::http::projects::is_project_staff(&me)
                || crate::app::projects::client_of(&app.platform, owner.id).await?
                    == Some(me.user_id)
        }
        Some(_) => me.has(Role::Admin),
        None => me.has(Role::Admin) || meta.uploaded_by == me.user_id,
    };
    if !allowed {
        return Err(super::super::access::forbidden(
            "your roles may not read what this file belongs to",
        ));
    }
    let content = app.platform.files.get(&meta.sha256).await?;
    let shown: String = meta
        .name
        .chars()
        .map(|c| match c {
            '"' | '\\' => '_',
            c if c.is_ascii() && !c.is_ascii_control() => c,
            _ => '_',
        })
        .collect();
    let disposition = format!("attachment; filename=\"{shown}\"");
    let mut response = (StatusCode::OK, content).into_response();
    let headers = response.headers_mut();
    // Served as a download (the generic type is what the document
    // declares); the type it was uploaded as comes beside it.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&meta.content_type) {
        headers.insert("x-annals-content-type", value);
    }
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
