//! Batched read-model writes. A projector loads the rows a batch of events
//! touches in one query per table, folds the whole batch into them in
//! memory, and writes back the rows that changed with multi-row upserts —
//! a handful of statements per batch instead of several per event.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use annals_domain::StoredEvent;

/// One column value, as bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(Some(v))
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(Some(v.to_string()))
    }
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Self {
        Cell::Text(v)
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(Some(v))
    }
}

impl From<Option<i64>> for Cell {
    fn from(v: Option<i64>) -> Self {
        Cell::Int(v)
    }
}

/// Parameters one statement carries at most (SQLite allows 32,766,
/// PostgreSQL 65,535; a few thousand is where bigger stops paying).
const MAX_BINDS: usize = 8_000;

/// Binds `cells` in order.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    cells: impl IntoIterator<Item = Cell>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for cell in cells {
        query = match cell {
            Cell::Text(v) => query.bind(v),
            Cell::Int(v) => query.bind(v),
        };
    }
    query
}

/// How a backend marks parameters: PostgreSQL `$1, $2, ...`; SQLite `?`
/// in order, because SQLite looks each numbered one up by walking its list
/// (`sqlite3_bind_parameter_name`): n² per statement, a fifth of a rebuild's
/// time at 900 parameters, 3.4 s for one INSERT of 30,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    numbered: bool,
}

impl Marks {
    pub fn of(conn: &AnyConnection) -> Self {
        Self {
            numbered: conn.backend_name() != "SQLite",
        }
    }

    /// The marks of the backend a pool connects to (by its URL's scheme).
    pub fn of_pool(pool: &sqlx::AnyPool) -> Self {
        Self {
            numbered: pool.connect_options().database_url.scheme() != "sqlite",
        }
    }

    pub const NUMBERED: Marks = Marks { numbered: true };
    pub const IN_ORDER: Marks = Marks { numbered: false };

    fn push(self, out: &mut String, index: usize) {
        if self.numbered {
            out.push('$');
            out.push_str(&index.to_string());
        } else {
            out.push('?');
        }
    }

    /// The mark of parameter `index` (from 1).
    pub fn one(self, index: usize) -> String {
        let mut out = String::new();
        self.push(&mut out, index);
        out
    }

    /// `$3, $4, $5`: `n` marks from `first`.
    pub fn list(self, n: usize, first: usize) -> String {
        let mut out = String::with_capacity(n * 6);
        for i in 0..n {
            if i > 0 {
                out.push_str(", ");
            }
            self.push(&mut out, first + i);
        }
        out
    }

    /// `($1, $2), ($3, $4)`: `rows` groups of `width` marks from `first`.
    pub fn rows(self, rows: usize, width: usize, first: usize) -> String {
        let mut out = String::with_capacity(rows * (width * 6 + 4));
        for r in 0..rows {
            if r > 0 {
                out.push_str(", ");
            }
            out.push('(');
            out.push_str(&self.list(width, first + r * width));
            out.push(')');
        }
        out
    }
}

/// How many rows of `width` cells fit one statement.
pub fn rows_per_statement(width: usize) -> usize {
    (MAX_BINDS / width.max(1)).max(1)
}

/// A row of one read-model table, keyed by its first column.
pub trait Record: Clone + Send + Sync {
    const TABLE: &'static str;
    /// The columns written and read; the first is the primary key.
    const COLUMNS: &'static [&'static str];
    fn key(&self) -> &str;
    /// The values of `COLUMNS`, in that order.
    fn cells(&self) -> Vec<Cell>;
    fn from_row(row: &AnyRow) -> Result<Self>;
}

/// Declares a read-model row in one place: its struct, its table, and its
/// columns (named as the fields; `key` is the primary key, text).
#[macro_export]
macro_rules! record {
    ($name:ident in $table:literal { key $key:ident, $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Clone)]
        struct $name {
            $key: String,
            $($field: $ty,)*
        }

        impl $crate::rows::Record for $name {
            const TABLE: &'static str = $table;
            const COLUMNS: &'static [&'static str] = &[stringify!($key), $(stringify!($field)),*];

            fn key(&self) -> &str {
                &self.$key
            }

            fn cells(&self) -> Vec<$crate::rows::Cell> {
                vec![self.$key.clone().into(), $(self.$field.clone().into()),*]
            }

            fn from_row(row: &::sqlx::any::AnyRow) -> ::anyhow::Result<Self> {
                use ::sqlx::Row;
                Ok(Self {
                    $key: row.try_get(stringify!($key))?,
                    $($field: row.try_get(stringify!($field))?,)*
                })
            }
        }
    };
}

/// The rows of one table that a batch touches: loaded once, changed in
/// memory, written back together.
pub struct Rows<R: Record> {
    rows: HashMap<String, R>,
    /// Keys of the rows to write, sorted so that writes lock rows in one order.
    changed: BTreeMap<String, ()>,
}

/// None loaded: for a batch that only adds or replaces whole rows, which
/// needs nothing read first.
impl<R: Record> Default for Rows<R> {
    fn default() -> Self {
        Self {
            rows: HashMap::new(),
            changed: BTreeMap::new(),
        }
    }
}

impl<R: Record> Rows<R> {
    /// Loads the rows with these keys that exist (one query per
    /// `rows_per_statement` keys).
    pub async fn load(
        tx: &mut AnyConnection,
        keys: impl IntoIterator<Item = String>,
    ) -> Result<Self> {
        let mut keys: Vec<String> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let mut rows = HashMap::with_capacity(keys.len());
        let marks = Marks::of(tx);
        for chunk in keys.chunks(MAX_BINDS) {
            let list = marks.list(chunk.len(), 1);
            let sql = format!(
                "SELECT {} FROM {} WHERE {} IN ({list})",
                R::COLUMNS.join(", "),
                R::TABLE,
                R::COLUMNS[0]
            );
            let query = bind_all(sqlx::query(&sql), chunk.iter().cloned().map(Cell::from));
            for row in query
                .fetch_all(&mut *tx)
                .await
                .with_context(|| format!("loading rows of {}", R::TABLE))?
            {
                let record =
                    R::from_row(&row).with_context(|| format!("reading a row of {}", R::TABLE))?;
                rows.insert(record.key().to_string(), record);
            }
        }
        Ok(Self {
            rows,
            changed: BTreeMap::new(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&R> {
        self.rows.get(key)
    }

    /// The row to change, if it exists; it will be written back.
    pub fn change(&mut self, key: &str) -> Option<&mut R> {
        let row = self.rows.get_mut(key)?;
        self.changed.insert(key.to_string(), ());
        Some(row)
    }

    /// Adds or replaces a row.
    pub fn put(&mut self, row: R) {
        let key = row.key().to_string();
        self.changed.insert(key.clone(), ());
        self.rows.insert(key, row);
    }

    /// Upserts every changed row, many rows per statement.
    pub async fn write(self, tx: &mut AnyConnection) -> Result<()> {
        let changed: Vec<&R> = self.changed.keys().map(|k| &self.rows[k]).collect();
        let width = R::COLUMNS.len();
        let updates = R::COLUMNS[1..]
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let marks = Marks::of(tx);
        for chunk in changed.chunks(rows_per_statement(width)) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {updates}",
                R::TABLE,
                R::COLUMNS.join(", "),
                marks.rows(chunk.len(), width, 1),
                R::COLUMNS[0],
            );
            bind_all(sqlx::query(&sql), chunk.iter().flat_map(|r| r.cells()))
                .execute(&mut *tx)
                .await
                .with_context(|| format!("writing rows of {}", R::TABLE))?;
        }
        Ok(())
    }
}

/// Each aggregate's state after the batch, folded from the state its row
/// keeps (`state_of`): (state, the last sequence applied).
pub fn fold<A, E, R>(
    rows: &Rows<R>,
    changes: &[(&StoredEvent, E)],
    state_of: impl Fn(&R) -> &str,
    evolve: impl Fn(&mut A, &E),
) -> anyhow::Result<HashMap<String, (A, i64)>>
where
    A: Default + DeserializeOwned,
    R: Record,
{
    let mut states = HashMap::<String, (A, i64)>::new();
    for (event, change) in changes {
        let id = &event.aggregate_id;
        if !states.contains_key(id) {
            let state = match rows.get(id) {
                Some(row) => serde_json::from_str(state_of(row))?,
                None => A::default(),
            };
            states.insert(id.clone(), (state, 0));
        }
        let entry = states.get_mut(id).expect("inserted above");
        evolve(&mut entry.0, change);
        entry.1 = event.sequence;
    }
    Ok(states)
}

/// The ids of the aggregates a batch changes (for `Rows::load`).
pub fn ids<E>(changes: &[(&StoredEvent, E)]) -> Vec<String> {
    changes
        .iter()
        .map(|(e, _)| e.aggregate_id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_number_rows_in_order_or_stand_in_order() {
        assert_eq!(Marks::NUMBERED.rows(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(Marks::NUMBERED.rows(1, 1, 5), "($5)");
        assert_eq!(Marks::IN_ORDER.rows(2, 2, 1), "(?, ?), (?, ?)");
        assert_eq!(Marks::NUMBERED.list(3, 2), "$2, $3, $4");
    }
}
