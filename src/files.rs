//! One storage for every uploaded file's bytes, addressed by their SHA-256
//! (`sha256/<first two hex>/<hex>`): the same content is stored once, and
//! nothing here deletes or overwrites. A local directory under
//! `ANNALS_DATA_DIR` by default; an S3-compatible bucket when
//! `ANNALS_FILES_S3_BUCKET` is set (the `object_store` crate, configured by
//! the usual `AWS_*` variables). What a file is and whom it belongs to are
//! events (`annals_domain::files`); this only keeps the bytes.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutMode, PutOptions};
use sha2::{Digest, Sha256};

/// The largest file accepted.
pub const MAX_FILE_BYTES: usize = 10 * 1024 * 1024;

/// Content types accepted, each with the first bytes its content starts
/// with (checked, so a declared type has to be true).
const ALLOWED: &[(&str, &[&[u8]])] = &[
    ("application/pdf", &[b"%PDF-"]),
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/jpeg", &[b"\xff\xd8\xff"]),
    ("image/gif", &[b"GIF87a", b"GIF89a"]),
    ("image/webp", &[b"RIFF"]),
    // Office Open XML and OpenDocument are zip files; the older Office
    // formats are OLE compound files.
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        &[b"PK\x03\x04"],
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &[b"PK\x03\x04"],
    ),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        &[b"PK\x03\x04"],
    ),
    ("application/vnd.oasis.opendocument.text", &[b"PK\x03\x04"]),
    (
        "application/vnd.oasis.opendocument.spreadsheet",
        &[b"PK\x03\x04"],
    ),
    ("application/msword", &[b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"]),
    (
        "application/vnd.ms-excel",
        &[b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"],
    ),
];

/// Why content is not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not one of the accepted types.
    Type(String),
    /// The content does not start as its declared type does.
    Content(String),
}

/// The accepted content types, for the documentation and the 415 answer.
pub fn allowed_types() -> Vec<&'static str> {
    ALLOWED.iter().map(|(t, _)| *t).collect()
}

/// Checks a declared type against the list and the content's first bytes.
/// Answers the type as stored (lower case, without parameters).
pub fn check_type(declared: &str, content: &[u8]) -> Result<String, Refusal> {
    let wanted = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((_, magics)) = ALLOWED.iter().find(|(t, _)| *t == wanted) else {
        return Err(Refusal::Type(wanted));
    };
    if !magics.iter().any(|m| content.starts_with(m)) {
        return Err(Refusal::Content(wanted));
    }
    Ok(wanted)
}

/// The accepted type content is, from its first bytes (and, for the zip
/// and OLE based office formats, the file name's extension); for a part
/// sent without a type of its own.
pub fn sniff(name: &str, content: &[u8]) -> Option<&'static str> {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let by_extension = |pairs: &[(&str, &'static str)]| {
        let extension = extension.as_deref()?;
        pairs.iter().find(|(e, _)| *e == extension).map(|(_, t)| *t)
    };
    if content.starts_with(b"PK\x03\x04") {
        return by_extension(&[
            (
                "docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            (
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                "pptx",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            ),
            ("odt", "application/vnd.oasis.opendocument.text"),
            ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
        ]);
    }
    if content.starts_with(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return by_extension(&[
            ("doc", "application/msword"),
            ("xls", "application/vnd.ms-excel"),
        ]);
    }
    ALLOWED
        .iter()
        .filter(|(t, _)| !t.starts_with("application/vnd") && *t != "application/msword")
        .find(|(_, magics)| magics.iter().any(|m| content.starts_with(m)))
        .map(|(t, _)| *t)
}

pub fn sha256_hex(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

#[derive(Clone)]
pub struct FileStore {
    inner: Arc<dyn ObjectStore>,
    /// `local` or `s3`, for /readyz and the logs.
    pub backend: &'static str,
}

fn object_path(sha256: &str) -> ObjectPath {
    ObjectPath::from(format!("sha256/{}/{sha256}", &sha256[..2]))
}

impl FileStore {
    /// A directory (created if missing).
    pub fn local(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening {}", dir.display()))?;
        Ok(Self {
            inner: Arc::new(store),
            backend: "local",
        })
    }

    /// An S3-compatible bucket; credentials, region and endpoint come from
    /// the `AWS_*` environment variables.
    pub fn s3(bucket: &str) -> Result<Self> {
        let store = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .context("configuring the S3 file storage")?;
        Ok(Self {
            inner: Arc::new(store),
            backend: "s3",
        })
    }

    /// Stores `content` under its hash (once: the same content again
    /// changes nothing). Answers the hash.
    pub async fn put(&self, content: Bytes) -> Result<String> {
        let sha256 = sha256_hex(&content);
        let path = object_path(&sha256);
        let create = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self.inner.put_opts(&path, content.into(), create).await {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(sha256),
            Err(err) => Err(err).context("storing a file"),
        }
    }

    pub async fn get(&self, sha256: &str) -> Result<Bytes> {
        let found = self
            .inner
            .get(&object_path(sha256))
            .await
            .context("reading a file")?;
        found.bytes().await.context("reading a file")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_type_must_be_allowed_and_true() {
        assert_eq!(
            check_type("Application/PDF; charset=binary", b"%PDF-1.7 ..."),
            Ok("application/pdf".into())
        );
        assert_eq!(
            check_type("application/pdf", b"MZ\x90\x00"),
            Err(Refusal::Content("application/pdf".into()))
        );
        assert_eq!(
            check_type("application/x-msdownload", b"MZ"),
            Err(Refusal::Type("application/x-msdownload".into()))
        );
    }

    #[test]
    fn a_part_without_a_type_is_taken_for_what_it_is() {
        assert_eq!(sniff("a.png", b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff("scan", b"%PDF-1.4"), Some("application/pdf"));
        assert_eq!(
            sniff("Offer.DOCX", b"PK\x03\x04..."),
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        );
        assert_eq!(
            sniff("archive.zip", b"PK\x03\x04..."),
            None,
            "a zip is not a document"
        );
        assert_eq!(sniff("tool.exe", b"MZ\x90"), None);
    }

    #[tokio::test]
    async fn the_same_content_is_stored_once_under_its_hash() {
        let dir = std::env::temp_dir().join(format!("annals-files-{}", uuid::Uuid::now_v7()));
        let store = FileStore::local(&dir).unwrap();
        let content = Bytes::from_static(b"%PDF-1.7 hello");
        let first = store.put(content.clone()).await.unwrap();
        let again = store.put(content.clone()).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(first, sha256_hex(&content));
        assert_eq!(store.get(&first).await.unwrap(), content);
        let _ = std::fs::remove_dir_all(dir);
    }
}
