//! Schemas of values the OpenAPI document describes more tightly than
//! their Rust type does (a URL is a `String` in the request).

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// An `http://` or `https://` address without spaces, at most 2000 characters.
pub struct HttpUrl;

impl PartialSchema for HttpUrl {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^https?://\S*$"))
            .max_length(Some(2000))
            .examples(["https://example.com/picture.jpg"])
            .into()
    }
}

impl ToSchema for HttpUrl {}
