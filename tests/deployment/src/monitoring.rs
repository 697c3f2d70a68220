//! `deployment/monitoring/`: the CloudWatch template through cfn-lint (from
//! PyPI, in `target/contract-venv`), and its metric filters against the lines
//! that the component and the usage logger really write, wrapped as Container
//! Insights' Fluent Bit wraps a container's line in the application log group.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::{project_root, spawn_app};
use yaml_serde::Value as Yaml;

use crate::filter_pattern::JsonPattern;
use crate::usage_logger::{daily_usage_route, script, Logger, ScratchDir, SCRIPT_KEY};

const TEMPLATE: &str = "deployment/monitoring/coworking-monitoring.yaml";

/// The parameters a deployment gives, with the template's defaults for the rest.
const CLUSTER: &str = "coworking-eks";

fn cfn_lint() -> PathBuf {
    let venv = std::env::var_os("CONTRACT_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/contract-venv"));
    let program = venv.join("bin/cfn-lint");
    assert!(
        program.exists(),
        "{} is missing: `cargo xtask test` installs it (tests/contract-tools.txt)",
        program.display()
    );
    program
}

#[test]
fn cfn_lint_finds_nothing_in_the_templates() {
    let output = Command::new(cfn_lint())
        .arg(project_root().join(TEMPLATE))
        .output()
        .expect("run cfn-lint");
    assert!(
        output.status.success(),
        "cfn-lint {TEMPLATE}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The template, its intrinsic functions resolved for [`CLUSTER`] and the
/// defaults, as CloudFormation would create it.
struct Stack {
    resources: serde_json::Map<String, Value>,
}

impl Stack {
    fn load() -> Stack {
        let text = std::fs::read_to_string(project_root().join(TEMPLATE)).expect(TEMPLATE);
        let template: Yaml = yaml_serde::from_str(&text).expect("the template is YAML");
        let mut parameters: BTreeMap<String, String> = template["Parameters"]
            .as_mapping()
            .expect("Parameters")
            .iter()
            .filter_map(|(name, parameter)| {
                let default = match &parameter["Default"] {
                    Yaml::String(text) => text.clone(),
                    Yaml::Number(number) => number.to_string(),
                    _ => return None,
                };
                Some((name.as_str()?.to_owned(), default))
            })
            .collect();
        parameters.insert("ClusterName".into(), CLUSTER.into());
        for (name, value) in [
            ("AWS::Region", "us-east-1"),
            ("AWS::AccountId", "123456789012"),
            ("AWS::Partition", "aws"),
        ] {
            parameters.insert(name.into(), value.into());
        }
        let Value::Object(resources) = resolve(&template["Resources"], &parameters) else {
            panic!("Resources is a mapping");
        };
        Stack { resources }
    }

    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| resource["Type"] == kind)
            .map(|(name, resource)| (name.as_str(), &resource["Properties"]))
    }

    /// Each metric filter's pattern, by the metric it counts.
    fn filters(&self) -> BTreeMap<String, (String, JsonPattern)> {
        self.of_type("AWS::Logs::MetricFilter")
            .map(|(name, filter)| {
                let pattern = filter["FilterPattern"].as_str().expect("FilterPattern");
                let transformation = &filter["MetricTransformations"][0];
                let metric = transformation["MetricName"].as_str().unwrap().to_owned();
                let namespace = transformation["MetricNamespace"].as_str().unwrap();
                let parsed =
                    JsonPattern::parse(pattern).unwrap_or_else(|err| panic!("{name}: {err}"));
                (metric, (namespace.to_owned(), parsed))
            })
            .collect()
    }
}

/// A CloudFormation value with `!Sub` and `!Ref` of parameters replaced, and
/// `!If` on the (false) alarm topic condition taken.
fn resolve(value: &Yaml, parameters: &BTreeMap<String, String>) -> Value {
    match value {
        Yaml::Tagged(tagged) => match tagged.tag.to_string().as_str() {
            "!Sub" => {
                let mut text = tagged.value.as_str().expect("!Sub of a string").to_owned();
                for (name, value) in parameters {
                    text = text.replace(&format!("${{{name}}}"), value);
                }
                assert!(!text.contains("${"), "an unknown name in !Sub: {text}");
                Value::String(text)
            }
            "!Ref" => {
                let name = tagged.value.as_str().expect("!Ref of a name");
                Value::String(
                    parameters
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| name.to_owned()),
                )
            }
            "!If" => resolve(&tagged.value[2], parameters),
            other => panic!("{other} is not resolved by these checks"),
        },
        Yaml::Mapping(mapping) => Value::Object(
            mapping
                .iter()
                .map(|(key, value)| (key.as_str().unwrap().to_owned(), resolve(value, parameters)))
                .collect(),
        ),
        Yaml::Sequence(items) => items.iter().map(|item| resolve(item, parameters)).collect(),
        other => serde_json::to_value(other).expect("a plain YAML value"),
    }
}

/// A container's line as the application log group holds it.
fn event(namespace: &str, container: &str, line: &str) -> Value {
    json!({
        "time": "2026-12-03T06:00:00.000000000Z",
        "stream": "stderr",
        "_p": "F",
        "log": line,
        "kubernetes": {
            "pod_name": format!("{container}-5d8f7c9b6-x2x7q"),
            "namespace_name": namespace,
            "container_name": container,
            "host": "ip-10-0-1-23.ec2.internal",
        },
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn each_metric_filter_counts_exactly_its_lines_of_the_real_service() {
    let stack = Stack::load();
    let filters = stack.filters();
    let namespace = "coworking";
    let app_name = "coworking";

    // The usage logger's script against the real component: reports, then
    // the database stopped under it.
    let mut app = spawn_app().await;
    let scratch = ScratchDir::new();
    let script = scratch.write(SCRIPT_KEY, &script(), false);
    let url = format!("{}{}", app.address, daily_usage_route());
    let logger = Logger::start(
        &script,
        &[("INTERVAL_SECONDS", "1"), ("REPORT_URL", &url)],
        None,
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    app.db.stop().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, _, logger_stdout, logger_stderr) = tokio::task::spawn_blocking(|| logger.terminate())
        .await
        .unwrap();
    let mut our_server_errors = 0;
    for path in [
        "/readiness_check",
        "/api/reports/user_visits",
        "/api/v2/usage",
    ] {
        let response = app
            .send_v2(reqwest::Method::GET, path, Some(test_support::API_KEY), &[])
            .await;
        assert!(response.status >= 500, "{path}: {}", response.status);
        our_server_errors += 1;
    }
    let component_lines: Vec<String> = app.host.logs().lines().map(str::to_owned).collect();

    let reports_got: Vec<&String> = logger_stdout
        .iter()
        .filter(|line| line.ends_with(" 200"))
        .collect();
    let logger_server_errors = logger_stderr
        .iter()
        .filter(|line| line.contains(" answered HTTP 5"))
        .count();
    assert!(reports_got.len() >= 2, "{logger_stdout:?}");
    assert!(logger_server_errors >= 1, "{logger_stderr:?}");

    let mut events: Vec<Value> = Vec::new();
    for line in &component_lines {
        events.push(event(namespace, app_name, line));
        // The same line from another namespace's app counts for nothing.
        events.push(event("staging", app_name, line));
    }
    for line in logger_stdout.iter().chain(&logger_stderr) {
        events.push(event(namespace, "usage-logger", line));
    }
    let counted = |metric: &str| -> Vec<String> {
        let (metric_namespace, pattern) = filters
            .get(metric)
            .unwrap_or_else(|| panic!("no metric filter counts {metric}"));
        assert_eq!(metric_namespace, "CoworkingAnalytics");
        events
            .iter()
            .filter(|event| pattern.matches(event))
            .map(|event| event["log"].as_str().unwrap().to_owned())
            .collect()
    };

    // One per report the poller got, and none of the component's report lines
    // (which client calls would add).
    let usage_reports = counted("UsageReports");
    assert_eq!(usage_reports.len(), reports_got.len(), "{usage_reports:?}");
    assert!(usage_reports
        .iter()
        .all(|line| line.starts_with("usage-logger: GET ")));
    // SIGTERM waits for a call in flight, then ends the script before its
    // line: the component may have answered one call more than the poller says.
    let report_lines = component_lines
        .iter()
        .filter(|line| line.contains("] INFO in app: {"))
        .count();
    assert!(
        (reports_got.len()..=reports_got.len() + 1).contains(&report_lines),
        "{component_lines:?}"
    );

    // One per failed readiness check: the one this test made.
    let readiness = counted("ReadinessFailures");
    assert_eq!(readiness.len(), 1, "{readiness:?}");
    assert!(readiness[0].contains("] ERROR in app: readiness check failed: "));

    // One per 5xx the service answered: the test's and the poller's (and
    // perhaps the poller's last, cut short as above).
    let server_errors = counted("ServerErrors");
    let answered = our_server_errors + logger_server_errors;
    assert!(
        (answered..=answered + 1).contains(&server_errors.len()),
        "{answered} 5xx answered, {} counted: {server_errors:?}\n{component_lines:?}",
        server_errors.len()
    );
    assert!(server_errors
        .iter()
        .all(|line| line.contains("] ERROR in app: ")));
}

#[test]
fn the_alarms_watch_what_the_filters_count_and_the_dashboard_shows_them() {
    let stack = Stack::load();
    let filters = stack.filters();
    let alarms: BTreeMap<&str, &Value> = stack
        .of_type("AWS::CloudWatch::Alarm")
        .map(|(_, alarm)| (alarm["AlarmName"].as_str().unwrap(), alarm))
        .collect();
    let names: Vec<&str> = alarms.keys().copied().collect();
    assert_eq!(
        names,
        [
            "coworking-pod-restarts",
            "coworking-readiness-failures",
            "coworking-server-errors",
            "coworking-usage-report-missing"
        ]
    );
    for (name, alarm) in &alarms {
        if let Some(metric) = alarm["MetricName"].as_str() {
            let (namespace, _) = filters
                .get(metric)
                .unwrap_or_else(|| panic!("{name} watches {metric}, which no filter counts"));
            assert_eq!(alarm["Namespace"], namespace.as_str(), "{name}");
        }
    }
    // The report missing for 2 minutes: under one a minute, twice, no data
    // counting as missing.
    let missing = alarms["coworking-usage-report-missing"];
    assert_eq!(
        (
            &missing["Period"],
            &missing["EvaluationPeriods"],
            &missing["TreatMissingData"]
        ),
        (&json!(60), &json!(2), &json!("breaching"))
    );
    assert_eq!(missing["ComparisonOperator"], "LessThanThreshold");

    let (_, dashboard) = stack
        .of_type("AWS::CloudWatch::Dashboard")
        .next()
        .expect("a dashboard");
    let body: Value = serde_json::from_str(dashboard["DashboardBody"].as_str().unwrap())
        .expect("the dashboard body is JSON");
    let text = body.to_string();
    for name in &names {
        assert!(
            text.contains(&format!(":alarm:{name}\"")),
            "the dashboard lacks {name}"
        );
    }
    for metric in filters.keys().map(String::as_str).chain([
        "pod_cpu_utilization",
        "pod_cpu_reserved_capacity",
        "pod_cpu_utilization_over_pod_limit",
        "pod_memory_utilization",
        "pod_memory_reserved_capacity",
        "pod_memory_utilization_over_pod_limit",
    ]) {
        assert!(
            text.contains(&format!("\"{metric}\"")),
            "the dashboard lacks {metric}"
        );
    }
}
