//! `annals replay --verify`: every read model rebuilt into a shadow copy
//! and compared row for row with the live one (G6, checked on the data
//! itself rather than by the tests alone).
//!
//! The shadow tables are temporary tables on one connection, made like the
//! live ones (columns, keys, indexes). Unqualified names resolve to the
//! temporary schema first on both PostgreSQL and SQLite, so a projector's
//! own SQL writes the shadow without knowing it. Everything happens in one
//! read transaction: the live tables and each read model's checkpoint are
//! seen at one instant, each shadow is rebuilt to exactly that checkpoint,
//! and the live server may go on writing meanwhile. The transaction is
//! rolled back at the end, which drops the shadows.

use std::collections::BTreeSet;
use std::sync::Arc;

use annals_projections::{names, Projector};
use anyhow::{bail, Context, Result};
use sqlx::{AnyConnection, Row};

use crate::store::{Backend, Db, LogReader};

/// Events read from the log per page while rebuilding a shadow.
const PAGE: i64 = 5_000;

/// Rows shown per side of a table that differs.
const SAMPLE: i64 = 5;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Each read model rebuilt, with the position it was compared at.
    pub checked: Vec<(&'static str, i64)>,
    /// Consumers that are not read models (no tables to compare).
    pub skipped: Vec<&'static str>,
    pub tables: usize,
    pub differences: Vec<Difference>,
}

/// One table whose shadow differs from the live rows.
#[derive(Debug)]
pub struct Difference {
    pub table: &'static str,
    pub live_rows: i64,
    pub shadow_rows: i64,
    /// Up to `SAMPLE` rows only the live table has, as JSON.
    pub only_live: Vec<String>,
    /// Up to `SAMPLE` rows only the rebuild has, as JSON.
    pub only_shadow: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Rebuilds `projectors` into shadow tables and compares them with the
/// live ones.
pub async fn verify(projectors: &[Arc<dyn Projector>], db: &Db, log: &LogReader) -> Result<Report> {
    let mut report = Report::default();
    let mut tables = BTreeSet::new();
    let mut verified = Vec::new();
    for projector in projectors {
        if projector.tables().is_empty() {
            report.skipped.push(projector.name());
        } else {
            projector.prepare(&db.any).await?;
            tables.extend(projector.tables().iter().copied());
            verified.push(projector.clone());
        }
    }
    let begin = match db.backend {
        Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ",
        Backend::Sqlite => "BEGIN",
    };
    let mut tx = db.any.begin_with(begin).await?;
    let live = match db.backend {
        Backend::Postgres => sqlx::query_scalar::<_, String>("SELECT current_schema()::text")
            .fetch_one(&mut *tx)
            .await
            .context("reading the current schema")?,
        Backend::Sqlite => "main".to_string(),
    };
    // The first read fixes the snapshot: the checkpoints and the live rows
    // below are all as of this instant.
    let mut positions = Vec::new();
    for projector in &verified {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_checkpoints WHERE name = $1")
                .bind(projector.name())
                .fetch_optional(&mut *tx)
                .await
                .context("reading the checkpoints")?;
        positions.push(position.unwrap_or(0));
    }
    for table in &tables {
        shadow_table(&mut tx, db.backend, &live, table).await?;
    }
    for (projector, up_to) in verified.iter().zip(positions) {
        rebuild(projector.as_ref(), &mut tx, log, up_to).await?;
        report.checked.push((projector.name(), up_to));
    }
    let consumers: Vec<&str> = verified.iter().map(|p| p.name()).collect();
    for table in &tables {
        if let Some(difference) = compare(&mut tx, db.backend, &live, table, &consumers).await? {
            report.differences.push(difference);
        }
    }
    report.tables = tables.len();
    tx.rollback().await?;
    Ok(report)
}

/// A temporary table made like the live `table`.
async fn shadow_table(
    conn: &mut AnyConnection,
    backend: Backend,
    live: &str,
    table: &str,
) -> Result<()> {
    match backend {
        Backend::Postgres => {
            sqlx::query(&format!(
                "CREATE TEMP TABLE {table} (LIKE {live}.{table} INCLUDING ALL)"
            ))
            .execute(&mut *conn)
            .await
            .with_context(|| format!("making a shadow of {table}"))?;
        }
        Backend::Sqlite => {
            let rows = sqlx::query(
                "SELECT type, sql FROM main.sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL \
                 ORDER BY type DESC",
            )
            .bind(table)
            .fetch_all(&mut *conn)
            .await?;
            if rows.is_empty() {
                bail!("no table {table}");
            }
            for row in rows {
                let kind: String = row.get(0);
                let sql: String = row.get(1);
                let shadow = match kind.as_str() {
                    "table" => sql.replacen("CREATE TABLE", "CREATE TEMP TABLE", 1),
                    "index" => temp_index(&sql)
                        .with_context(|| format!("an index of {table} does not parse: {sql}"))?,
                    _ => continue,
                };
                sqlx::query(&shadow)
                    .execute(&mut *conn)
                    .await
                    .with_context(|| format!("making a shadow of {table}: {shadow}"))?;
            }
        }
    }
    Ok(())
}

/// SQLite: `CREATE [UNIQUE] INDEX name ON t(...)` made in the temporary
/// schema (`CREATE [UNIQUE] INDEX temp.name ON t(...)`).
fn temp_index(sql: &str) -> Option<String> {
    let at = sql.find("INDEX ")? + "INDEX ".len();
    Some(format!("{}temp.{}", &sql[..at], &sql[at..]))
}

/// The log applied to the shadow up to `up_to`, in pages, as the live
/// runner applies it.
async fn rebuild(
    projector: &dyn Projector,
    conn: &mut AnyConnection,
    log: &LogReader,
    up_to: i64,
) -> Result<()> {
    let mut after = 0;
    while after < up_to {
        let events = log.read_range(after, up_to.min(after + PAGE)).await?;
        if let Some(last) = events.last() {
            annals_projections::forget::apply_in_parts(projector, conn, &events)
                .await
                .with_context(|| format!("rebuilding {} into its shadow", projector.name()))?;
            after = last.position;
        } else {
            after = up_to.min(after + PAGE);
        }
    }
    Ok(())
}

async fn compare(
    conn: &mut AnyConnection,
    backend: Backend,
    live: &str,
    table: &'static str,
    consumers: &[&str],
) -> Result<Option<Difference>> {
    let shadow = match backend {
        Backend::Postgres => format!("pg_temp.{table}"),
        Backend::Sqlite => format!("temp.{table}"),
    };
    let live_table = format!("{live}.{table}");
    // The names table is shared; only the rebuilt consumers' rows count.
    let only = if table == names::TABLE {
        let quoted: Vec<String> = consumers.iter().map(|c| format!("'{c}'")).collect();
        format!(" WHERE consumer IN ({})", quoted.join(", "))
    } else {
        String::new()
    };
    let except = match backend {
        Backend::Postgres => "EXCEPT ALL",
        Backend::Sqlite => "EXCEPT",
    };
    let count = |from: &str| format!("SELECT COUNT(*) FROM {from}{only}");
    let live_rows: i64 = sqlx::query_scalar(&count(&live_table))
        .fetch_one(&mut *conn)
        .await?;
    let shadow_rows: i64 = sqlx::query_scalar(&count(&shadow))
        .fetch_one(&mut *conn)
        .await?;
    let json = match backend {
        Backend::Postgres => "row_to_json(d)::text".to_string(),
        Backend::Sqlite => {
            let columns: Vec<String> =
                sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                    .fetch_all(&mut *conn)
                    .await?;
            let pairs: Vec<String> = columns.iter().map(|c| format!("'{c}', d.{c}")).collect();
            format!("json_object({})", pairs.join(", "))
        }
    };
    let mut sides = Vec::new();
    for (from, minus) in [(&live_table, &shadow), (&shadow, &live_table)] {
        let sql = format!(
            "SELECT {json} FROM (SELECT * FROM {from}{only} {except} SELECT * FROM {minus}{only}) d \
             LIMIT {SAMPLE}"
        );
        let rows: Vec<String> = sqlx::query_scalar(&sql)
            .fetch_all(&mut *conn)
            .await
            .with_context(|| format!("comparing {table}"))?;
        sides.push(rows);
    }
    let only_shadow = sides.pop().unwrap_or_default();
    let only_live = sides.pop().unwrap_or_default();
    if live_rows == shadow_rows && only_live.is_empty() && only_shadow.is_empty() {
        return Ok(None);
    }
    Ok(Some(Difference {
        table,
        live_rows,
        shadow_rows,
        only_live,
        only_shadow,
    }))
}

#[cfg(test)]
mod tests {
    use super::temp_index;

    #[test]
    fn an_index_is_made_in_the_temporary_schema() {
        assert_eq!(
            temp_index("CREATE UNIQUE INDEX users_by_name ON users (username)").as_deref(),
            Some("CREATE UNIQUE INDEX temp.users_by_name ON users (username)")
        );
        assert_eq!(
            temp_index("CREATE INDEX leads_open ON leads (status)").as_deref(),
            Some("CREATE INDEX temp.leads_open ON leads (status)")
        );
    }
}
