//! Batched read-model writes. A projector loads the rows a batch of events
//! touches in one query per table, folds the whole batch into them in
//! memory, and writes back the rows that changed with multi-row upserts —
//! a handful of statements per batch instead of several per event.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, Result};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

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

/// Parameters one statement carries at most. SQLite looks a numbered
/// parameter up by walking its list (`sqlite3_bind_parameter_name`), so a
/// statement with n of them costs n² there: a 30,000-parameter INSERT took
/// 3.4 s. PostgreSQL allows 65,535 and gains little beyond a few thousand.
const MAX_BINDS: usize = 8_000;
const MAX_BINDS_SQLITE: usize = 900;

/// The parameter budget of one statement on this connection's backend.
pub fn max_binds(conn: &AnyConnection) -> usize {
    if conn.backend_name() == "SQLite" {
        MAX_BINDS_SQLITE
    } else {
        MAX_BINDS
    }
}

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

/// `($1, $2), ($3, $4)`: `rows` groups of `width` placeholders from `$first`.
pub fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(first + r * width + c).to_string());
        }
        out.push(')');
    }
    out
}

/// How many rows of `width` cells fit one statement on `conn`.
pub fn rows_per_statement(conn: &AnyConnection, width: usize) -> usize {
    (max_binds(conn) / width.max(1)).max(1)
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

/// The rows of one table that a batch touches: loaded once, changed in
/// memory, written back together.
pub struct Rows<R: Record> {
    rows: HashMap<String, R>,
    /// Keys of the rows to write, sorted so that writes lock rows in one order.
    changed: BTreeMap<String, ()>,
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
        for chunk in keys.chunks(max_binds(tx)) {
            let list = (1..=chunk.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
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
        for chunk in changed.chunks(rows_per_statement(tx, width)) {
            let sql = format!(
                "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {updates}",
                R::TABLE,
                R::COLUMNS.join(", "),
                placeholders(chunk.len(), width, 1),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 1, 5), "($5)");
    }
}
