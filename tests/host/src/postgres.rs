//! `spin:postgres/postgres@4.0.0`, as Spin's outbound PostgreSQL factor serves it:
//! a pool of at most 64 connections per address string, connections reset on
//! reuse, TLS by `sslmode` (native-tls), and Spin's mapping between PostgreSQL
//! types and WIT values.

// The interface's own error type (generated from the WIT) is what these return.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::Result;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::Row;
use wasmtime::component::Resource;

use crate::bindings::spin::postgres::postgres::{
    Column, DbDataType, DbError, DbValue, Error, HostConnection, Interval, ParameterValue,
    QueryError, RowSet,
};
use crate::error_text::{anyhow_debug, error_text};
use crate::outbound::OutboundPolicy;
use crate::server::State;
use crate::trust::TrustStore;

/// Spin's pool size per address.
const MAX_CONNECTIONS: usize = 64;

/// An open connection: a client borrowed from its address's pool.
pub struct PgConnection(Object);

/// The pools of one application, by address string.
pub struct Pools {
    policy: OutboundPolicy,
    trust: TrustStore,
    pools: Mutex<HashMap<String, Pool>>,
}

impl Pools {
    pub fn new(policy: OutboundPolicy, trust: TrustStore) -> Pools {
        Pools {
            policy,
            trust,
            pools: Mutex::new(HashMap::new()),
        }
    }

    async fn open(&self, address: &str) -> Result<Object, Error> {
        let pool = self.pool(address)?;
        pool.get()
            .await
            .map_err(|err| Error::ConnectionFailed(anyhow_debug(&err)))
    }

    fn pool(&self, address: &str) -> Result<Pool, Error> {
        let mut pools = self.pools.lock().expect("pools lock");
        if let Some(pool) = pools.get(address) {
            return Ok(pool.clone());
        }
        let config = self
            .policy
            .check(address)
            .map_err(Error::ConnectionFailed)?;
        let tls = self
            .trust
            .connector()
            .map_err(|err| Error::ConnectionFailed(err.to_string()))?;
        let manager = Manager::from_config(
            config,
            postgres_native_tls::MakeTlsConnector::new(tls),
            ManagerConfig {
                // Reset session state and prove the connection alive before reuse, so
                // a restarted database costs no failed request.
                recycling_method: RecyclingMethod::Clean,
            },
        );
        // As Spin's pool: no wait, create or recycle timeout. tokio-postgres
        // bounds only the TCP connect by `connect_timeout`, so a server that
        // accepts and never answers holds `open` for as long as it lasts
        // (tests/host/spin-runtime.md).
        let pool = Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|err| Error::ConnectionFailed(err.to_string()))?;
        pools.insert(address.to_owned(), pool.clone());
        Ok(pool)
    }
}

impl crate::bindings::spin::postgres::postgres::Host for State {}

impl HostConnection for State {
    async fn open(&mut self, address: String) -> Result<Resource<PgConnection>, Error> {
        let client = self.app.pools.open(&address).await?;
        self.table
            .push(PgConnection(client))
            .map_err(|err| Error::Other(err.to_string()))
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, Error> {
        let client = self.client(&connection)?;
        let params = bind(params)?;
        let rows = client
            .query(&statement, &as_refs(&params))
            .await
            .map_err(query_failed)?;
        // Spin describes the columns from the first row: an empty result has none.
        let columns = rows
            .first()
            .map(|row| {
                row.columns()
                    .iter()
                    .map(|column| Column {
                        name: column.name().to_owned(),
                        data_type: data_type(column.type_()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rows = rows.iter().map(convert_row).collect::<Result<_, _>>()?;
        Ok(RowSet { columns, rows })
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<u64, Error> {
        let client = self.client(&connection)?;
        let params = bind(params)?;
        client
            .execute(&statement, &as_refs(&params))
            .await
            .map_err(query_failed)
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        // Dropping the pooled client returns it to its pool.
        self.table.delete(connection)?;
        Ok(())
    }
}

impl State {
    /// The pooled client behind a connection handle.
    fn client(&self, connection: &Resource<PgConnection>) -> Result<&Object, Error> {
        self.table
            .get(connection)
            .map(|connection| &connection.0)
            .map_err(|err| Error::Other(err.to_string()))
    }
}

/// The parameters of a statement, as tokio-postgres binds them.
fn bind(params: Vec<ParameterValue>) -> Result<Vec<Param>, Error> {
    params.into_iter().map(to_sql).collect()
}

fn as_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|param| param.as_ref() as _).collect()
}

fn query_failed(err: tokio_postgres::Error) -> Error {
    match err.as_db_error() {
        Some(db) => Error::QueryFailed(QueryError::DbError(DbError {
            as_text: error_text(&err),
            severity: db.severity().to_owned(),
            code: db.code().code().to_owned(),
            message: db.message().to_owned(),
            detail: db.detail().map(str::to_owned),
            extras: Vec::new(),
        })),
        None => Error::QueryFailed(QueryError::Text(error_text(&err))),
    }
}

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::TIMESTAMP => DbDataType::Datetime,
        Type::TIMESTAMPTZ => DbDataType::Timestamp,
        Type::UUID => DbDataType::Uuid,
        Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        ref other => DbDataType::Other(other.name().to_owned()),
    }
}

/// Decode one row. One value that cannot be decoded fails the whole query, as
/// in Spin (`error deserializing column N: ...`).
fn convert_row(row: &Row) -> Result<Vec<DbValue>, Error> {
    (0..row.len())
        .map(|index| {
            convert_value(row, index)
                .map_err(|err| Error::QueryFailed(QueryError::Text(error_text(&err))))
        })
        .collect()
}

fn convert_value(row: &Row, index: usize) -> Result<DbValue, tokio_postgres::Error> {
    fn get<'a, T: FromSql<'a>>(
        row: &'a Row,
        index: usize,
        wrap: impl FnOnce(T) -> DbValue,
    ) -> Result<DbValue, tokio_postgres::Error> {
        Ok(row
            .try_get::<_, Option<T>>(index)?
            .map_or(DbValue::DbNull, wrap))
    }
    let ty = row.columns()[index].type_().clone();
    match ty {
        Type::BOOL => get(row, index, DbValue::Boolean),
        Type::CHAR => get(row, index, DbValue::Int8),
        Type::INT2 => get(row, index, DbValue::Int16),
        Type::INT4 => get(row, index, DbValue::Int32),
        Type::INT8 => get(row, index, DbValue::Int64),
        Type::FLOAT4 => get(row, index, DbValue::Floating32),
        Type::FLOAT8 => get(row, index, DbValue::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, index, DbValue::Str),
        Type::BYTEA => get(row, index, DbValue::Binary),
        Type::DATE => get(row, index, |d: NaiveDate| {
            DbValue::Date((d.year(), d.month() as u8, d.day() as u8))
        }),
        Type::TIME => get(row, index, |t: NaiveTime| DbValue::Time(time_tuple(t))),
        // TIMESTAMPTZ is decoded as a naive timestamp, as Spin does: it fails.
        Type::TIMESTAMP | Type::TIMESTAMPTZ => get(row, index, |dt: NaiveDateTime| {
            let (h, mi, s, ns) = time_tuple(dt.time());
            DbValue::Datetime((dt.year(), dt.month() as u8, dt.day() as u8, h, mi, s, ns))
        }),
        Type::UUID => get(row, index, |u: uuid::Uuid| DbValue::Uuid(u.to_string())),
        Type::JSONB => get(row, index, |j: serde_json::Value| {
            DbValue::Jsonb(serde_json::to_vec(&j).expect("JSON serializes"))
        }),
        Type::NUMERIC => get(row, index, |d: rust_decimal::Decimal| {
            DbValue::Decimal(d.to_string())
        }),
        Type::INT4_ARRAY => get(row, index, DbValue::ArrayInt32),
        Type::INT8_ARRAY => get(row, index, DbValue::ArrayInt64),
        Type::NUMERIC_ARRAY => get(row, index, |a: Vec<Option<rust_decimal::Decimal>>| {
            DbValue::ArrayDecimal(a.into_iter().map(|d| d.map(|d| d.to_string())).collect())
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            get(row, index, DbValue::ArrayStr)
        }
        Type::INTERVAL => get(row, index, |i: PgInterval| DbValue::Interval(i.0)),
        _ => get(row, index, |raw: RawValue| DbValue::Unsupported(raw.0)),
    }
}

fn time_tuple(t: NaiveTime) -> (u8, u8, u8, u32) {
    (
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    )
}

/// The raw bytes of a value of a type Spin does not map.
struct RawValue(Vec<u8>);

impl<'a> FromSql<'a> for RawValue {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(RawValue(raw.to_vec()))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary INTERVAL: microseconds, days, months.
struct PgInterval(Interval);

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let bytes: [u8; 16] = raw.try_into().map_err(|_| "an interval is 16 bytes")?;
        Ok(PgInterval(Interval {
            micros: i64::from_be_bytes(bytes[0..8].try_into()?),
            days: i32::from_be_bytes(bytes[8..12].try_into()?),
            months: i32::from_be_bytes(bytes[12..16].try_into()?),
        }))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

/// A NULL parameter that fits any column type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

type Param = Box<dyn ToSql + Sync + Send>;

fn to_sql(value: ParameterValue) -> Result<Param, Error> {
    let bad = |what: &str| Error::BadParameter(what.to_owned());
    Ok(match value {
        ParameterValue::Boolean(v) => Box::new(v),
        ParameterValue::Int8(v) => Box::new(v),
        ParameterValue::Int16(v) => Box::new(v),
        ParameterValue::Int32(v) => Box::new(v),
        ParameterValue::Int64(v) => Box::new(v),
        ParameterValue::Floating32(v) => Box::new(v),
        ParameterValue::Floating64(v) => Box::new(v),
        ParameterValue::Str(v) => Box::new(v),
        ParameterValue::Binary(v) => Box::new(v),
        ParameterValue::Date((y, m, d)) => Box::new(
            NaiveDate::from_ymd_opt(y, m.into(), d.into()).ok_or_else(|| bad("invalid date"))?,
        ),
        ParameterValue::Time((h, mi, s, ns)) => Box::new(
            NaiveTime::from_hms_nano_opt(h.into(), mi.into(), s.into(), ns)
                .ok_or_else(|| bad("invalid time"))?,
        ),
        ParameterValue::Datetime((y, m, d, h, mi, s, ns)) => Box::new(
            NaiveDate::from_ymd_opt(y, m.into(), d.into())
                .and_then(|date| date.and_hms_nano_opt(h.into(), mi.into(), s.into(), ns))
                .ok_or_else(|| bad("invalid datetime"))?,
        ),
        ParameterValue::Timestamp(seconds) => Box::new(
            chrono::DateTime::<chrono::Utc>::from_timestamp(seconds, 0)
                .ok_or_else(|| bad("invalid timestamp"))?,
        ),
        ParameterValue::Uuid(v) => {
            Box::new(uuid::Uuid::parse_str(&v).map_err(|err| bad(&err.to_string()))?)
        }
        ParameterValue::Jsonb(v) => Box::new(
            serde_json::from_slice::<serde_json::Value>(&v).map_err(|err| bad(&err.to_string()))?,
        ),
        ParameterValue::Decimal(v) => Box::new(
            v.parse::<rust_decimal::Decimal>()
                .map_err(|err| bad(&err.to_string()))?,
        ),
        ParameterValue::ArrayInt32(v) => Box::new(v),
        ParameterValue::ArrayInt64(v) => Box::new(v),
        ParameterValue::ArrayStr(v) => Box::new(v),
        ParameterValue::DbNull => Box::new(Null),
        ParameterValue::RangeInt32(_)
        | ParameterValue::RangeInt64(_)
        | ParameterValue::RangeDecimal(_)
        | ParameterValue::ArrayDecimal(_)
        | ParameterValue::Interval(_) => {
            return Err(bad(
                "this test host does not bind range, decimal-array or interval parameters",
            ))
        }
    })
}
