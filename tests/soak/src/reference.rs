//! The soak's requests and what each must answer, computed once before the
//! run by plain SQL over `tokens` and `users` (the data is written in UTC and
//! every v2 request asks for UTC, so a local date is `created_at::date`). A
//! body is read as its client reads it (JSON, CSV) and compared field by
//! field with the reference.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use tokio_postgres::Client;

/// One request of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Health,
    Readiness,
    DailyUsage,
    UserVisits,
    UsageJson,
    UsageCsv,
    MembersJson,
    MembersCsv,
}

const USAGE: &str = "/api/v2/usage?from=2024-01-01&to=2024-03-04&granularity=week&tz=UTC";
const MEMBERS: &str = "/api/v2/members?from=2024-01-01&to=2024-02-01&tz=UTC&limit=50";

impl Endpoint {
    pub const ALL: [Endpoint; 8] = [
        Endpoint::Health,
        Endpoint::Readiness,
        Endpoint::DailyUsage,
        Endpoint::UserVisits,
        Endpoint::UsageJson,
        Endpoint::UsageCsv,
        Endpoint::MembersJson,
        Endpoint::MembersCsv,
    ];

    pub fn path(self) -> String {
        match self {
            Endpoint::Health => "/health_check".into(),
            Endpoint::Readiness => "/readiness_check".into(),
            Endpoint::DailyUsage => "/api/reports/daily_usage".into(),
            Endpoint::UserVisits => "/api/reports/user_visits".into(),
            Endpoint::UsageJson => USAGE.into(),
            Endpoint::UsageCsv => format!("{USAGE}&format=csv"),
            Endpoint::MembersJson => MEMBERS.into(),
            Endpoint::MembersCsv => format!("{MEMBERS}&format=csv"),
        }
    }

    /// Whether it reads the database (the health check does not).
    pub fn reads_the_database(self) -> bool {
        self != Endpoint::Health
    }

    /// The failure it answers while the database is out: 503, but readiness's
    /// Flask-compatible 500 `failed`.
    pub fn failure_status(self) -> u16 {
        if self == Endpoint::Readiness {
            500
        } else {
            503
        }
    }
}

/// The figures every answer must carry.
pub struct Reference {
    daily_usage: BTreeMap<String, i64>,
    user_visits: BTreeMap<String, i64>,
    /// start → [visits, tokens_issued, active_members, new_members]
    usage: BTreeMap<String, [i64; 4]>,
    /// (member_id, visits, tokens_issued) of the first page, and the total.
    members: (Vec<[i64; 3]>, i64),
}

impl Reference {
    pub async fn compute(client: &Client) -> Result<Reference> {
        let pairs = |rows: Vec<tokio_postgres::Row>| -> BTreeMap<String, i64> {
            rows.iter().map(|row| (row.get(0), row.get(1))).collect()
        };
        let daily_usage = pairs(
            client
                .query(
                    "SELECT to_char(created_at::date, 'YYYY-MM-DD'), count(*) FROM tokens \
                     WHERE used_at IS NOT NULL GROUP BY 1",
                    &[],
                )
                .await?,
        );
        let user_visits = pairs(
            client
                .query("SELECT user_id::text, count(*) FROM tokens GROUP BY 1", &[])
                .await?,
        );
        let usage = client
            .query(
                "WITH weeks AS (SELECT generate_series(TIMESTAMP '2024-01-01', '2024-02-26', '7 days')::date AS start)
                 SELECT to_char(start, 'YYYY-MM-DD'),
                   (SELECT count(*) FROM tokens WHERE used_at IS NOT NULL
                      AND created_at >= start AND created_at < start + 7),
                   (SELECT count(*) FROM tokens WHERE created_at >= start AND created_at < start + 7),
                   (SELECT count(DISTINCT user_id) FROM tokens WHERE used_at IS NOT NULL
                      AND created_at >= start AND created_at < start + 7),
                   (SELECT count(*) FROM users WHERE joined_at >= start AND joined_at < start + 7)
                 FROM weeks",
                &[],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), [row.get(1), row.get(2), row.get(3), row.get(4)]))
            .collect();
        let page = client
            .query(
                "SELECT user_id::int8, count(*) FILTER (WHERE used_at IS NOT NULL), count(*)
                 FROM tokens WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'
                 GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT 50",
                &[],
            )
            .await?
            .iter()
            .map(|row| [row.get(0), row.get(1), row.get(2)])
            .collect();
        let total: i64 = client
            .query_one(
                "SELECT count(DISTINCT user_id) FROM tokens
                 WHERE created_at >= '2024-01-01' AND created_at < '2024-02-01'",
                &[],
            )
            .await?
            .get(0);
        Ok(Reference {
            daily_usage,
            user_visits,
            usage,
            members: (page, total),
        })
    }

    /// Whether a 200's body is the reference, and if not, why.
    pub fn check(&self, endpoint: Endpoint, body: &[u8]) -> Result<()> {
        match endpoint {
            Endpoint::Health | Endpoint::Readiness => {
                ensure!(body == b"ok", "not ok");
            }
            Endpoint::DailyUsage => {
                let days: BTreeMap<String, i64> = serde_json::from_slice(body)?;
                ensure!(days == self.daily_usage, "other days or counts");
            }
            Endpoint::UserVisits => {
                let users: BTreeMap<String, Value> = serde_json::from_slice(body)?;
                let visits: BTreeMap<String, i64> = users
                    .into_iter()
                    .map(|(id, user)| Ok((id, user["visits"].as_i64().context("visits")?)))
                    .collect::<Result<_>>()?;
                ensure!(visits == self.user_visits, "other users or counts");
            }
            Endpoint::UsageJson => {
                let report: Value = serde_json::from_slice(body)?;
                let buckets = report["buckets"].as_array().context("buckets")?;
                let figures = buckets
                    .iter()
                    .map(|bucket| {
                        let figure = |name: &str| bucket[name].as_i64().context("a figure");
                        Ok((
                            bucket["start"].as_str().context("start")?.to_owned(),
                            [
                                figure("visits")?,
                                figure("tokens_issued")?,
                                figure("active_members")?,
                                figure("new_members")?,
                            ],
                        ))
                    })
                    .collect::<Result<BTreeMap<_, _>>>()?;
                ensure!(figures == self.usage, "other buckets or figures");
            }
            Endpoint::UsageCsv => {
                let figures = csv_rows(body)?
                    .into_iter()
                    .map(|row| {
                        Ok((
                            row[0].clone(),
                            [int(&row[2])?, int(&row[3])?, int(&row[4])?, int(&row[5])?],
                        ))
                    })
                    .collect::<Result<BTreeMap<_, _>>>()?;
                ensure!(figures == self.usage, "other rows or figures");
            }
            Endpoint::MembersJson => {
                let report: Value = serde_json::from_slice(body)?;
                let page = report["members"]
                    .as_array()
                    .context("members")?
                    .iter()
                    .map(|member| {
                        let figure = |name: &str| member[name].as_i64().context("a figure");
                        Ok([
                            figure("member_id")?,
                            figure("visits")?,
                            figure("tokens_issued")?,
                        ])
                    })
                    .collect::<Result<Vec<_>>>()?;
                ensure!(page == self.members.0, "another page");
                ensure!(report["total"] == self.members.1, "another total");
            }
            Endpoint::MembersCsv => {
                let page = csv_rows(body)?
                    .into_iter()
                    .map(|row| Ok([int(&row[0])?, int(&row[4])?, int(&row[5])?]))
                    .collect::<Result<Vec<_>>>()?;
                ensure!(page == self.members.0, "another page");
            }
        }
        Ok(())
    }
}

fn csv_rows(body: &[u8]) -> Result<Vec<Vec<String>>> {
    csv::Reader::from_reader(body)
        .records()
        .map(|record| Ok(record?.iter().map(str::to_owned).collect()))
        .collect()
}

fn int(text: &str) -> Result<i64> {
    text.parse()
        .with_context(|| format!("{text:?} is not a count"))
}
