//! Forgetting a person in a read model when their personal data is erased
//! (`UserPersonalDataErased`, `CustomerPersonalDataErased`,
//! `OrderPersonalDataErased`). Their fields
//! were stored encrypted with their key (`src/store/privacy.rs`), so a
//! rebuild after the key is destroyed reads every such text as `[erased]`;
//! forgetting makes the live rows the same: each text the person gave, in
//! the rows of theirs, becomes `[erased]` (an absent one stays absent).
//! The consumer applies a batch in parts that end at each erasure
//! (`apply_in_parts`), so what the person gives after an erasure, under a
//! new key, stays.

use anyhow::{Context, Result};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use annals_domain::user::ERASED;
use annals_domain::StoredEvent;

use crate::rows::Marks;
use crate::Projector;

/// Whose data an erasure is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    User,
    Customer,
    /// A guest's order (a signed-in buyer's is the user's).
    Order,
}

impl Whose {
    fn of(event: &StoredEvent) -> Option<Self> {
        match (event.aggregate_type.as_str(), event.event_type.as_str()) {
            ("user", "UserPersonalDataErased") => Some(Whose::User),
            ("customer", "CustomerPersonalDataErased") => Some(Whose::Customer),
            ("order", "OrderPersonalDataErased") => Some(Whose::Order),
            _ => None,
        }
    }
}

/// Whether `event` erases someone's personal data.
pub fn is_erasure(event: &StoredEvent) -> bool {
    event.event_type.ends_with("PersonalDataErased")
}

/// Whether `event` erases data of a person whose data `shows` holds.
pub fn erases(shows: &[Shows], event: &StoredEvent) -> bool {
    Whose::of(event).is_some_and(|whose| shows.iter().any(|s| s.whose == whose))
}

/// Personal texts a read model table holds, and whose: `owner` is the
/// column with the person's id; `columns` hold a text each; `state` is a
/// JSON column and the pointers in it under which every text is theirs.
#[derive(Debug, Clone, Copy)]
pub struct Shows {
    pub table: &'static str,
    pub key: &'static str,
    pub whose: Whose,
    pub owner: &'static str,
    pub columns: &'static [&'static str],
    pub state: Option<(&'static str, &'static [&'static str])>,
}

/// Applies `events` in parts that end at each erasure, in one transaction.
pub async fn apply_in_parts(
    projector: &dyn Projector,
    tx: &mut AnyConnection,
    events: &[StoredEvent],
) -> Result<()> {
    for part in events.split_inclusive(is_erasure) {
        projector.apply(tx, part).await?;
    }
    Ok(())
}

/// Forgets, in every table of `shows`, the people whose erasure `events`
/// hold (call it after the batch's rows are written).
pub async fn forget(tx: &mut AnyConnection, shows: &[Shows], events: &[StoredEvent]) -> Result<()> {
    for event in events {
        let Some(whose) = Whose::of(event) else {
            continue;
        };
        for table in shows.iter().filter(|s| s.whose == whose) {
            forget_in(tx, table, &event.aggregate_id)
                .await
                .with_context(|| format!("forgetting {} in {}", event.aggregate_id, table.table))?;
        }
    }
    Ok(())
}

async fn forget_in(tx: &mut AnyConnection, shows: &Shows, person: &str) -> Result<()> {
    let marks = Marks::of(tx);
    let mut read: Vec<&str> = vec![shows.key];
    read.extend(shows.columns);
    read.extend(shows.state.map(|(column, _)| column));
    let select = format!(
        "SELECT {} FROM {} WHERE {} = {}",
        read.join(", "),
        shows.table,
        shows.owner,
        marks.one(1)
    );
    let rows = sqlx::query(&select)
        .bind(person.to_string())
        .fetch_all(&mut *tx)
        .await?;
    let mut written: Vec<&str> = shows.columns.to_vec();
    written.extend(shows.state.map(|(column, _)| column));
    if written.is_empty() {
        return Ok(());
    }
    let sets: Vec<String> = written
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = {}", marks.one(i + 1)))
        .collect();
    let update = format!(
        "UPDATE {} SET {} WHERE {} = {}",
        shows.table,
        sets.join(", "),
        shows.key,
        marks.one(written.len() + 1)
    );
    for row in rows {
        let key: String = row.try_get(0)?;
        let mut query = sqlx::query(&update);
        for i in 0..shows.columns.len() {
            let text: Option<String> = row.try_get(i + 1)?;
            query = query.bind(text.map(|_| ERASED.to_string()));
        }
        if let Some((_, pointers)) = shows.state {
            let text: String = row.try_get(shows.columns.len() + 1)?;
            let mut state: Value = serde_json::from_str(&text)
                .with_context(|| format!("the state of {key} does not parse"))?;
            for pointer in pointers {
                if let Some(value) = state.pointer_mut(pointer) {
                    erase_texts(value);
                }
            }
            query = query.bind(serde_json::to_string(&state)?);
        }
        query.bind(key).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Every text inside `value` becomes `[erased]`, as the person's fields
/// read once their key is destroyed.
pub fn erase_texts(value: &mut Value) {
    match value {
        Value::String(text) => *text = ERASED.to_string(),
        Value::Array(items) => items.iter_mut().for_each(erase_texts),
        Value::Object(fields) => fields.values_mut().for_each(erase_texts),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_under_a_pointer_is_erased_and_nothing_else() {
        let mut state = serde_json::json!({"plan": {"to": "+4915112345678", "content": ["a", "b"], "n": 3, "gone": null}, "status": "sent"});
        erase_texts(state.pointer_mut("/plan").unwrap());
        assert_eq!(
            state,
            serde_json::json!({"plan": {"to": ERASED, "content": [ERASED, ERASED], "n": 3, "gone": null}, "status": "sent"})
        );
    }
}
