//! The v2 reports' statements and parameters for the benchmark's paths, built
//! by the component's own code as its handlers build them (`src/v2/handlers.rs`:
//! the request parsed, its range resolved, the parameters bound), so that their
//! Spin floor runs exactly what the service runs. The paths name their ranges,
//! so no request needs today's date (one more query in the service).

use anyhow::{anyhow, bail, Result};
use bytes::BytesMut;
use chrono_tz::Tz;
use coworking_analytics::reports::ReportSql;
use coworking_analytics::v2::members::MembersRequest;
use coworking_analytics::v2::negotiate::Format;
use coworking_analytics::v2::usage::UsageRequest;
use coworking_analytics::v2::usage_sql::usage_sql;
use spin_sdk::pg4::ParameterValue;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// The benchmark's service runs with the default zones.
const DEFAULT_ZONE: Tz = Tz::UTC;

/// A v2 report's two statements and its parameters.
pub struct Statement {
    pub sql: ReportSql,
    pub parameters: Vec<ParameterValue>,
}

/// The statement of `path` (`/api/v2/usage?...` or `/api/v2/members?...`).
pub fn statement(path: &str) -> Result<Statement> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let problem = |problem| anyhow!("{path}: {problem:?}");
    match route {
        "/api/v2/usage" => {
            let usage = UsageRequest::parse(query, DEFAULT_ZONE)
                .and_then(|request| request.resolve(None))
                .map_err(problem)?;
            Ok(Statement {
                sql: usage_sql(usage.measures),
                parameters: usage.sql_parameters(DEFAULT_ZONE, None),
            })
        }
        "/api/v2/members" => {
            let request = MembersRequest::parse(query, DEFAULT_ZONE).map_err(problem)?;
            let format = request.format.unwrap_or(Format::Json);
            let members = request.resolve(None).map_err(problem)?;
            Ok(Statement {
                sql: members.sql(None, members.page_size(format)),
                parameters: members.sql_parameters(DEFAULT_ZONE, None, members.page_size(format)),
            })
        }
        _ => bail!("{path}: no v2 report the benchmark knows"),
    }
}

/// A parameter as tokio-postgres binds it: the value Spin's outbound
/// PostgreSQL sends for each variant the v2 reports use.
pub fn bind(value: &ParameterValue) -> Result<Box<dyn ToSql + Send + Sync>> {
    Ok(match value {
        ParameterValue::Boolean(value) => Box::new(*value),
        ParameterValue::Int32(value) => Box::new(*value),
        ParameterValue::Int64(value) => Box::new(*value),
        ParameterValue::Str(value) => Box::new(value.clone()),
        ParameterValue::ArrayInt32(values) => Box::new(values.clone()),
        ParameterValue::DbNull => Box::new(Null),
        other => bail!("a parameter the v2 reports do not send: {other:?}"),
    })
}

/// SQL NULL, of whatever type the statement declares (`$6::int4`, `$7::int8`).
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(
        &self,
        _: &Type,
        _: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
