//! Lists small enough to read whole (the catalog), served a page at a time
//! like every list: `limit` + opaque `cursor`, `{items, next_cursor}`. The
//! items are ordered here by a key, not by the database's collation, so
//! both backends give the same order and a cursor is just the last key.

use base64::Engine;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;

/// Items per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;
/// The longest cursor taken (the `max_length` of the list's `cursor`).
pub const MAX_CURSOR: usize = 1000;

#[derive(Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// The page of `items` after `cursor`, ordered by `key`.
/// The page size a list asks for (default 50, 1 to 200), after checking
/// that its cursor is at most `max_cursor` characters; 400 naming either.
pub fn window(
    limit: Option<u32>,
    cursor: Option<&str>,
    max_cursor: usize,
) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_parameter(
            "limit",
            format!("must be from 1 to {MAX_LIMIT}"),
        ));
    }
    if cursor.is_some_and(|c| c.chars().count() > max_cursor) {
        return Err(ApiError::bad_parameter(
            "cursor",
            format!("must be at most {max_cursor} characters"),
        ));
    }
    Ok(limit)
}

pub fn page<T: ToSchema>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    limit: Option<u32>,
    cursor: Option<&str>,
) -> Result<Page<T>, ApiError> {
    let limit = window(limit, cursor, MAX_CURSOR)?;
    let mut keyed: Vec<(String, T)> = items.drain(..).map(|item| (key(&item), item)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    // A cursor that is not one of ours still reads as a key: a page after it.
    let after = cursor.map(|c| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_else(|| c.to_string())
    });
    let mut rest: Vec<(String, T)> = keyed
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    let next_cursor = (rest.len() > limit as usize).then(|| {
        rest.truncate(limit as usize);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&rest[rest.len() - 1].0)
    });
    Ok(Page {
        items: rest.into_iter().map(|(_, item)| item).collect(),
        next_cursor,
    })
}

/// The key of an item listed by name: name first, the id breaks ties.
/// A key that sorts newest first under the ascending order `page` keeps
/// (`at`: an RFC 3339 instant).
pub fn newest_first(at: &str, id: &uuid::Uuid) -> String {
    format!("{at}{id}")
        .chars()
        .map(|c| char::from_u32(0xFFFF - c as u32).unwrap_or(c))
        .collect()
}

pub fn by_name(name: &str, id: &uuid::Uuid) -> String {
    format!("{name}\u{0}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(ToSchema, Serialize, Debug, PartialEq)]
    struct Item(u32);

    fn all_pages(limit: u32) -> Vec<Vec<u32>> {
        let items = || (0..7).rev().map(Item).collect::<Vec<_>>();
        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let page = page(
                items(),
                |i| format!("{:03}", i.0),
                Some(limit),
                cursor.as_deref(),
            )
            .unwrap();
            pages.push(page.items.iter().map(|i| i.0).collect());
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return pages,
            }
        }
    }

    #[test]
    fn pages_cover_every_item_once_in_key_order() {
        assert_eq!(all_pages(3), vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert_eq!(all_pages(7), vec![vec![0, 1, 2, 3, 4, 5, 6]]);
    }

    #[test]
    fn a_limit_out_of_range_names_the_parameter() {
        let err = page(vec![Item(1)], |i| i.0.to_string(), Some(0), None)
            .err()
            .unwrap();
        assert_eq!(err.errors[0].field, "limit");
        let long = "x".repeat(MAX_CURSOR + 1);
        let err = page(vec![Item(1)], |i| i.0.to_string(), None, Some(&long))
            .err()
            .unwrap();
        assert_eq!(err.errors[0].field, "cursor");
    }
}

/// The parameter of reading one thing: at least at a position.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// Wait until the read model has applied the log up to here.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}

/// The parameters of a plain list: a page of it, read at least at a position.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(max_length = 1000)]
    pub cursor: Option<String>,
    /// Wait until the read model has applied the log up to here.
    #[param(minimum = 0)]
    pub min_position: Option<i64>,
}
