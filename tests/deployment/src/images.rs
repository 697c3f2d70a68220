//! The image the SpinApp runs is a build that the pipeline pushed: `buildspec.yml`'s
//! repository and a build tag, never a moving one.

use serde_json::Value;

use crate::manifests::{self, assert_no_findings, deployment, spin_apps, Document, Finding};

/// The ECR repository that the pipeline pushes to: `buildspec.yml`'s IMAGE_REPO_NAME.
fn pipeline_repository() -> String {
    let path = manifests::project_root().join("buildspec.yml");
    let text = std::fs::read_to_string(&path).expect("read buildspec.yml");
    let spec: Value = yaml_serde::from_str(&text).expect("parse buildspec.yml");
    spec.pointer("/env/variables/IMAGE_REPO_NAME")
        .and_then(Value::as_str)
        .expect("buildspec.yml sets env.variables.IMAGE_REPO_NAME")
        .to_string()
}

/// The image is one the pipeline pushed: `<account>.dkr.ecr.<region>.amazonaws.com/`
/// + `repository` + a build tag `X.Y.Z-build.N` (never `latest`, never the
///   moving `X.Y.Z`), optionally pinned by digest as well.
fn images_are_pipeline_builds(documents: &[Document], repository: &str) -> Vec<Finding> {
    let mut found = Vec::new();
    for app in spin_apps(documents) {
        let image = app.str_at("/spec/image").unwrap_or_default();
        if let Err(problem) = check_pipeline_image(image, repository) {
            found.push(app.finding("/spec/image", format!("{image}: {problem}")));
        }
    }
    found
}

fn check_pipeline_image(image: &str, repository: &str) -> Result<(), String> {
    let reference = image
        .split_once('@')
        .map_or(image, |(reference, _)| reference);
    let (registry, rest) = reference
        .split_once('/')
        .ok_or("no registry: the pipeline pushes to ECR")?;
    let labels: Vec<&str> = registry.split('.').collect();
    let is_ecr = matches!(
        labels.as_slice(),
        [account, "dkr", "ecr", region, "amazonaws", "com"]
            if account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !region.is_empty()
                && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    );
    if !is_ecr {
        return Err(format!(
            "{registry} is not an ECR registry (<account>.dkr.ecr.<region>.amazonaws.com)"
        ));
    }
    let (name, tag) = rest.rsplit_once(':').ok_or("no tag")?;
    if name != repository {
        return Err(format!(
            "the repository {name} is not buildspec.yml's IMAGE_REPO_NAME {repository}"
        ));
    }
    let build_tag = tag.split_once("-build.").and_then(|(version, build)| {
        let version_ok = version.split('.').count() == 3
            && version
                .split('.')
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let build_ok = !build.is_empty()
            && !build.starts_with('0')
            && build.bytes().all(|b| b.is_ascii_digit());
        (version_ok && build_ok).then_some(())
    });
    build_tag.ok_or_else(|| {
        format!("the tag {tag} is not a build tag X.Y.Z-build.N of the pipeline (never latest)")
    })
}

#[test]
fn the_image_is_a_versioned_build_of_the_pipelines_repository() {
    let repository = pipeline_repository();
    assert_eq!(repository, "coworking-analytics");
    assert_no_findings(&images_are_pipeline_builds(deployment(), &repository));

    // The README's step that sets the account and region replaces this very text.
    let image = manifests::object("SpinApp", "coworking")
        .str_at("/spec/image")
        .unwrap();
    let registry = image.split('/').next().unwrap();
    assert!(
        manifests::deployment_readme().contains(registry),
        "deployment/README.md does not show how to replace {registry}"
    );

    for (image, problem) in [
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking-analytics:latest",
            "the tag latest is not a build tag X.Y.Z-build.N of the pipeline (never latest)",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking-analytics:0.1.0",
            "the tag 0.1.0 is not a build tag",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking-analytics:0.1.0-build.0",
            "the tag 0.1.0-build.0 is not a build tag",
        ),
        (
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/coworking:0.1.0-build.3",
            "the repository coworking is not buildspec.yml's IMAGE_REPO_NAME coworking-analytics",
        ),
        (
            "ghcr.io/acme/coworking-analytics:0.1.0-build.3",
            "ghcr.io is not an ECR registry",
        ),
        ("coworking-analytics:0.1.0-build.3", "no registry"),
    ] {
        let problem_found = check_pipeline_image(image, &repository).unwrap_err();
        assert!(
            problem_found.starts_with(problem),
            "{image}: {problem_found}"
        );
    }
    check_pipeline_image(
        "123456789012.dkr.ecr.eu-west-3.amazonaws.com/coworking-analytics:2.10.0-build.45@sha256:0123",
        &repository,
    )
    .unwrap();
}
