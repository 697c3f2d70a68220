//! Offline checks of `deployment/`: `cargo test --release -p deployment-checks`.
//!
//! - [`schema`]: every YAML document under `deployment/` against the Kubernetes
//!   1.32 strict JSON schemas and the SpinKube CRDs (spin-operator v0.6.1,
//!   runtime-class-manager v0.2.0) vendored in `deployment/schemas/`, with the
//!   keys that a CRD does not define rejected as well;
//! - what the manifests say about each other and the rest of the project:
//!   [`settings`] (`spin.toml`'s variables, ConfigMap and Secret keys),
//!   [`operator_objects`] (what we ask of the objects spin-operator generates),
//!   [`images`] (the pipeline's builds) and [`secrets`] (no password in git);
//! - [`network_policy`]: egress peers as the EKS network policy agent enforces
//!   them for calls through a Service's ClusterIP, for the Services each
//!   workload calls;
//! - [`pod_security`]: the pods we ship against the "restricted" Pod Security
//!   Standard;
//! - [`service_links`]: the kubelet's service links in the pod against the
//!   shim's reading of plain variable names, with the component in the host;
//! - [`shim`]: runtime-class-manager's Shim, the RuntimeClass it installs, and
//!   the fallback installer;
//! - [`usage_logger`]: the poller's script, run against a local HTTP server;
//! - [`monitoring`]: the CloudWatch templates through cfn-lint, and their
//!   metric filters ([`filter_pattern`]) against the lines that the component
//!   and the usage logger really write;
//! - [`postgres`]: the seed job's script and the read-only role, run against a
//!   throwaway PostgreSQL 15.
//!
//! A failure names the file, the document (1-based, with its kind and name) and
//! the field, as a JSON pointer: `deployment/coworking.yaml, document 2 (Service
//! coworking-public): /spec/ports/0/targetPort: ...`.

#[cfg(test)]
mod filter_pattern;
#[cfg(test)]
mod images;
#[cfg(test)]
mod manifests;
#[cfg(test)]
mod monitoring;
#[cfg(test)]
mod network_policy;
#[cfg(test)]
mod operator;
#[cfg(test)]
mod operator_objects;
#[cfg(test)]
mod pod_security;
#[cfg(test)]
mod postgres;
#[cfg(test)]
mod schema;
#[cfg(test)]
mod secrets;
#[cfg(test)]
mod service_links;
#[cfg(test)]
mod settings;
#[cfg(test)]
mod shim;
#[cfg(test)]
mod usage_logger;
