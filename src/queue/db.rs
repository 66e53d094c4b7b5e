//! The two databases the queue runs on, SQLite (embedded, the default) and PostgreSQL
//! (several machines), behind one set of SQL.
//!
//! Every statement is written once, with `$1`-style parameters (both accept them), and runs
//! on either through `on_pool!` and `on_tx!`, which compile the statement's code once per
//! database. What differs between the two is small and named here: how a write transaction
//! starts ([`Pool::begin`]), the row locks of a claim ([`Dialect::skip_locked`],
//! [`Dialect::for_update`]), and the schema (`migrations/` for SQLite, `migrations_pg/` for
//! PostgreSQL: the same tables, with `BIGINT` ids and counts, since PostgreSQL's `INTEGER`
//! is 32 bits and decodes into no `i64`).
//!
//! Portable SQL, where the dialects part: `ON CONFLICT … DO NOTHING` (not `INSERT OR
//! IGNORE`), `IS NOT DISTINCT FROM` (not `IS`), `CASE` (not two-argument `MAX`), sums cast to
//! `BIGINT` (PostgreSQL sums `BIGINT` into `NUMERIC`), `IN` lists of parameters (not
//! `json_each`), `SUM(CASE …)` (not a sum of booleans). Both have `RETURNING` and
//! `UPDATE … FROM (VALUES …)`; nothing is stored as a boolean or a blob.

use std::fmt;
use std::path::{Path, PathBuf};

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

/// Where the database is: a SQLite file, or a PostgreSQL server (`postgres://…`).
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbUrl {
    /// `postgres://…` or `postgresql://…` is a server; `sqlite://PATH` or anything else is a
    /// SQLite file.
    pub fn parse(s: &str) -> DbUrl {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            DbUrl::Postgres(s.to_string())
        } else {
            let path = s
                .strip_prefix("sqlite://")
                .or_else(|| s.strip_prefix("sqlite:"))
                .unwrap_or(s);
            DbUrl::Sqlite(PathBuf::from(path))
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DbUrl::Postgres(_))
    }

    /// The SQLite file, if it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DbUrl::Sqlite(p) => Some(p),
            DbUrl::Postgres(_) => None,
        }
    }

    /// As given, password included (for connecting and for the config file).
    pub fn as_text(&self) -> String {
        match self {
            DbUrl::Sqlite(p) => p.display().to_string(),
            DbUrl::Postgres(u) => u.clone(),
        }
    }
}

/// Shown with its password hidden: it goes into error messages and logs.
impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbUrl::Sqlite(p) => write!(f, "{}", p.display()),
            DbUrl::Postgres(u) => f.write_str(&redact(u)),
        }
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl From<&str> for DbUrl {
    fn from(s: &str) -> Self {
        DbUrl::parse(s)
    }
}

impl From<&Path> for DbUrl {
    fn from(p: &Path) -> Self {
        DbUrl::Sqlite(p.to_path_buf())
    }
}

impl From<PathBuf> for DbUrl {
    fn from(p: PathBuf) -> Self {
        DbUrl::Sqlite(p)
    }
}

impl From<&PathBuf> for DbUrl {
    fn from(p: &PathBuf) -> Self {
        DbUrl::Sqlite(p.clone())
    }
}

impl From<&DbUrl> for DbUrl {
    fn from(d: &DbUrl) -> Self {
        d.clone()
    }
}

impl serde::Serialize for DbUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_text())
    }
}

impl<'de> serde::Deserialize<'de> for DbUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DbUrl::parse(&String::deserialize(d)?))
    }
}

/// Which SQL dialect a pool speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Appended to a claim's `SELECT … LIMIT n` over `jobs j`: on PostgreSQL, lock the rows
    /// taken and skip those another claimer holds, so concurrent claims never wait on each
    /// other nor take the same job. SQLite has one writer at a time and needs nothing.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE OF j SKIP LOCKED",
        }
    }

    /// Appended to a read of rows the same transaction then updates.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// A pool of connections to either database.
#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on either database. The store's writes take one, so that what a job
/// produced commits together with the job.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tx::Sqlite(_) => "Tx::Sqlite",
            Tx::Postgres(_) => "Tx::Postgres",
        })
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.commit().await,
            Tx::Postgres(t) => t.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(t) => t.rollback().await,
            Tx::Postgres(t) => t.rollback().await,
        }
    }
}

/// The key of the advisory lock that PostgreSQL write transactions of the store take (see
/// [`Pool::begin`]): "quarry" in ASCII.
const STORE_LOCK: i64 = 0x7175_6172_7279;

impl Pool {
    pub fn dialect(&self) -> Dialect {
        match self {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A write transaction of the store, one at a time on either database: SQLite's `BEGIN
    /// IMMEDIATE` takes its write lock at once; on PostgreSQL every such transaction takes
    /// one advisory lock, so that what is read and then written (the planner's patterns,
    /// a job's follow-ups, rescues) sees the same serial order as on SQLite. The hot path of
    /// the queue (claim, heartbeat, complete, fail, release) does not take it: it relies on
    /// row locks ([`Pool::begin_rows`]).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Pool::Sqlite(p) => Ok(Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)),
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(STORE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// A transaction that relies on row locks alone (PostgreSQL); on SQLite the same as
    /// [`Pool::begin`].
    pub async fn begin_rows(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Pool::Sqlite(p) => Ok(Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?)),
            Pool::Postgres(p) => Ok(Tx::Postgres(p.begin().await?)),
        }
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// Runs `$body` with `$c` bound to the pool of whichever database `$pool` is. The body is
/// compiled once per database, so `sqlx::query(…)` in it is typed for each.
macro_rules! on_pool {
    ($pool:expr, $c:ident => $body:expr) => {
        match $pool {
            $crate::queue::db::Pool::Sqlite($c) => $body,
            $crate::queue::db::Pool::Postgres($c) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the connection of whichever transaction `$tx` is; use
/// `&mut **$c` as the executor. With `$db`, that name is the database type in the body (for
/// `QueryBuilder::<$db>`).
macro_rules! on_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::queue::db::Tx::Sqlite($c) => $body,
            $crate::queue::db::Tx::Postgres($c) => $body,
        }
    };
    ($tx:expr, $c:ident, $db:ident => $body:expr) => {
        match $tx {
            $crate::queue::db::Tx::Sqlite($c) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                $body
            }
            $crate::queue::db::Tx::Postgres($c) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

/// The URL of database `name` on the server of `url` (its path replaced, its query kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Creates a new, empty PostgreSQL database named `<prefix>_<pid>_<random>` on the server of
/// `server` (a URL of any database there) and returns its URL: the queue tests and the
/// benchmark each run on one of their own, then [`drop_scratch`] it.
pub async fn create_scratch(server: &str, prefix: &str) -> Result<String, sqlx::Error> {
    use sqlx::migrate::MigrateDatabase;
    let name = format!("{prefix}_{}_{:08x}", std::process::id(), fastrand::u32(..));
    let url = with_database(server, &name);
    Postgres::create_database(&url).await?;
    Ok(url)
}

/// Drops a database made by [`create_scratch`], closing its other connections.
pub async fn drop_scratch(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::migrate::MigrateDatabase;
    Postgres::force_drop_database(url).await
}

/// `$first, $first+1, …` as `$n` parameters, comma-separated, for an `IN (…)` list.
pub fn params(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_database_and_hide_passwords() {
        assert_eq!(
            DbUrl::parse("queue.db"),
            DbUrl::Sqlite(PathBuf::from("queue.db"))
        );
        assert_eq!(
            DbUrl::parse("sqlite:///tmp/q.db"),
            DbUrl::Sqlite(PathBuf::from("/tmp/q.db"))
        );
        let pg = DbUrl::parse("postgres://quarry:s3cret@db.lan:5432/quarry");
        assert!(pg.is_postgres());
        assert_eq!(pg.to_string(), "postgres://quarry:***@db.lan:5432/quarry");
        assert_eq!(pg.as_text(), "postgres://quarry:s3cret@db.lan:5432/quarry");
        assert_eq!(
            DbUrl::parse("postgresql://db.lan/quarry").to_string(),
            "postgresql://db.lan/quarry"
        );
        assert_eq!(params(3, 3), "$3, $4, $5");
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
            "postgres://u:p@h:5432/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    }
}
