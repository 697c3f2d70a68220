//! Checks of `buildspec.yml`, the CodeBuild pipeline: what it names exists, and
//! its phases, run with bash in CodeBuild's order and with stand-ins for `aws`,
//! `docker` and cargo first on `PATH`, stop where CodeBuild would stop and push
//! what they should.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::dev::project_root;

fn yaml_str(value: &yaml_serde::Value) -> &str {
    value.as_str().expect("a YAML string")
}

/// Every shell command of the buildspec, phase by phase.
fn buildspec() -> (yaml_serde::Value, Vec<(String, Vec<String>)>) {
    let text = fs::read_to_string(project_root().join("buildspec.yml")).unwrap();
    let spec: yaml_serde::Value = yaml_serde::from_str(&text).unwrap();
    let phases = spec["phases"].as_mapping().expect("phases");
    let commands = phases
        .iter()
        .map(|(name, phase)| {
            let commands = phase["commands"].as_sequence().expect("commands");
            let commands = commands.iter().map(|c| yaml_str(c).to_owned()).collect();
            (yaml_str(name).to_owned(), commands)
        })
        .collect();
    (spec, commands)
}

#[test]
fn buildspec_phases_and_variables() {
    let (spec, phases) = buildspec();
    assert_eq!(spec["version"].as_f64(), Some(0.2), "buildspec version 0.2");
    let names: Vec<&str> = phases.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["install", "pre_build", "build", "post_build"]);
    // Its commands use bash (`<<<`), which CodeBuild runs only when told.
    assert_eq!(spec["env"]["shell"].as_str(), Some("bash"));
    assert_eq!(
        spec["env"]["variables"]["IMAGE_REPO_NAME"].as_str(),
        Some("coworking-analytics")
    );
}

/// The cache keeps paths of the checkout (CodeBuild resolves a relative path
/// against it; an absolute one would tie the build to one machine's layout),
/// and the registry it keeps is the one the toolchain container's cargo uses.
#[test]
fn the_cache_keeps_the_checkouts_registry_and_target() {
    let (spec, phases) = buildspec();
    let paths: Vec<&str> = spec["cache"]["paths"]
        .as_sequence()
        .expect("cache.paths")
        .iter()
        .map(yaml_str)
        .collect();
    assert_eq!(paths, [".cargo-registry/**/*", "target/**/*"]);
    let xtask = phases
        .iter()
        .flat_map(|(_, commands)| commands)
        .find(|command| command.starts_with("export XTASK="))
        .expect("the buildspec defines $XTASK");
    assert!(
        xtask.contains("-v $CODEBUILD_SRC_DIR/.cargo-registry:/usr/local/cargo/registry"),
        "the container's registry is the cached one: {xtask}"
    );
}

#[test]
fn buildspec_names_what_exists() {
    use clap::CommandFactory;
    let (spec, phases) = buildspec();
    let all: Vec<&str> = phases
        .iter()
        .flat_map(|(_, commands)| commands.iter().map(String::as_str))
        .collect();
    let words: Vec<&str> = all
        .iter()
        .flat_map(|command| command.split_whitespace())
        .collect();

    // Every `cargo xtask <task>` (run as `$XTASK <task>`) is a task of xtask.
    let cli = crate::Cli::command();
    let tasks: Vec<String> = all
        .iter()
        .flat_map(|command| command.split("$XTASK").skip(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|task| task.trim_matches(|c| "\"')".contains(c)).to_owned())
        .collect();
    for task in ["tags", "test", "image"] {
        assert!(
            tasks.iter().any(|t| t == task),
            "the buildspec runs `xtask {task}`"
        );
    }
    for task in &tasks {
        assert!(cli.find_subcommand(task).is_some(), "no xtask task {task}");
    }

    // The Dockerfile exists, and the build context is what `xtask image` writes.
    let build = all
        .iter()
        .find(|command| command.contains("docker buildx build"))
        .expect("a docker buildx build");
    for flag in [
        "--platform linux/arm64",
        "--provenance=false",
        "--sbom=false",
    ] {
        assert!(build.contains(flag), "docker buildx build {flag}");
    }
    let args: Vec<&str> = build.split_whitespace().collect();
    let dockerfile = args[args.iter().position(|a| *a == "-f").unwrap() + 1];
    assert!(project_root().join(dockerfile).is_file(), "{dockerfile}");
    assert_eq!(dockerfile, "runtime-image/Dockerfile");
    assert_eq!(
        args.last(),
        Some(&format!("{}/context", crate::image::OUT_DIR).as_str())
    );

    // Every repository path a command names exists.
    for word in &words {
        let path = word.trim_matches(|c| c == '"' || c == '\'');
        if path.starts_with("runtime-image/") || path.starts_with("xtask/") {
            assert!(project_root().join(path).exists(), "{path} does not exist");
        }
    }

    // Every artifact is written by post_build.
    let post_build = &phases
        .iter()
        .find(|(name, _)| name == "post_build")
        .unwrap()
        .1;
    for file in spec["artifacts"]["files"].as_sequence().expect("artifacts") {
        let file = yaml_str(file);
        assert!(
            post_build.iter().any(|c| c.ends_with(&format!("> {file}"))),
            "post_build writes {file}"
        );
    }
}

/// The phases in the order CodeBuild runs them, whatever the file's order.
const PHASE_ORDER: [&str; 4] = ["install", "pre_build", "build", "post_build"];

/// The tags the stand-in tag step prints, as `cargo xtask tags` would.
const TAGS: [&str; 3] = ["0.1.0", "0.1.0-build.7", "0123456"];
const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

/// Runs the buildspec's commands as CodeBuild does (buildspec 0.2): one bash
/// for every phase, so that variables and the directory carry over; a command
/// that fails ends its phase; a failed install or pre_build ends the build,
/// a failed build still runs post_build with `CODEBUILD_BUILD_SUCCEEDING=0`.
const DRIVER: &str = r#"
export CODEBUILD_BUILD_SUCCEEDING=1
run_phase() {
  local command
  for command in "$COMMANDS/$1".*; do
    [ -e "$command" ] || continue
    source "$command" || return
  done
}
cd "$CODEBUILD_SRC_DIR"
run_phase install || exit 10
run_phase pre_build || exit 11
run_phase build || CODEBUILD_BUILD_SUCCEEDING=0
run_phase post_build || exit 13
test "$CODEBUILD_BUILD_SUCCEEDING" = 1 || exit 12
"#;

/// Stand-ins, first on `PATH`: each records its arguments in `$CALLS`.
/// `docker run ... <toolchain image> <command>` runs the command, so that the
/// stand-in cargo answers `cargo xtask ...`.
const STAND_INS: [(&str, &str); 3] = [
    (
        "aws",
        r#"echo "aws $*" >> "$CALLS"
[ "$1 $2" = "ecr get-login-password" ] && echo ecr-token"#,
    ),
    (
        "docker",
        r#"echo "docker $*" >> "$CALLS"
case "$1" in
  build | login) cat > /dev/null ;;
  push) [ "$FAIL" != push ] ;;
  run)
    while [ "$#" -gt 0 ] && [ "$1" != "$TOOLCHAIN_IMAGE" ]; do shift; done
    shift
    exec "$@" ;;
esac"#,
    ),
    (
        "cargo",
        r#"echo "cargo $*" >> "$CALLS"
case "$2" in
  tags)
    if [ "$FAIL" = tags ]; then echo "Error: build number \"12a\" is not a positive integer" >&2; exit 1; fi
    printf '%s\n' 0.1.0 0.1.0-build.7 0123456 ;;
  test) [ "$FAIL" != test ] ;;
esac"#,
    ),
];

/// What a simulated build did.
struct SimulatedBuild {
    status: std::process::ExitStatus,
    /// What the commands printed.
    output: String,
    /// The stand-ins' calls, in order.
    calls: Vec<String>,
    /// `image.json` as the build left it in the checkout, if it wrote one.
    artifact: Option<String>,
}

impl SimulatedBuild {
    fn pushed(&self) -> Vec<&str> {
        self.calls
            .iter()
            .filter_map(|call| call.strip_prefix("docker push "))
            .collect()
    }
}

/// Run the buildspec with the stand-ins; `fail` names the step that fails
/// (`tags`, `test`, `push`), or is empty.
fn run_buildspec(fail: &str) -> SimulatedBuild {
    let (spec, phases) = buildspec();
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let (bin, commands, checkout, home) = (
        dir.join("bin"),
        dir.join("commands"),
        dir.join("checkout"),
        dir.join("home"),
    );
    for path in [&bin, &commands, &checkout, &home] {
        fs::create_dir_all(path).unwrap();
    }
    for (name, script) in STAND_INS {
        let path = bin.join(name);
        fs::write(&path, format!("#!/usr/bin/env bash\n{script}\n")).unwrap();
        make_executable(&path);
    }
    for (phase, phase_commands) in &phases {
        assert!(
            PHASE_ORDER.contains(&phase.as_str()),
            "unknown phase {phase}"
        );
        for (index, command) in phase_commands.iter().enumerate() {
            fs::write(commands.join(format!("{phase}.{index:03}")), command).unwrap();
        }
    }
    let calls = dir.join("calls");
    let mut bash = Command::new("bash");
    bash.arg("-c").arg(DRIVER);
    // The buildspec's own variables, then what CodeBuild and the project set.
    for (name, value) in spec["env"]["variables"]
        .as_mapping()
        .expect("env.variables")
    {
        bash.env(yaml_str(name), yaml_str(value));
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let output = bash
        .env("PATH", path)
        .env("HOME", &home)
        .env("COMMANDS", &commands)
        .env("CALLS", &calls)
        .env("FAIL", fail)
        .env("CODEBUILD_SRC_DIR", &checkout)
        .env("CODEBUILD_BUILD_NUMBER", "7")
        .env("CODEBUILD_RESOLVED_SOURCE_VERSION", "0123456789abcdef")
        .env("AWS_ACCOUNT_ID", ACCOUNT)
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .expect("run bash");
    let run = SimulatedBuild {
        status: output.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        calls: fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect(),
        artifact: fs::read_to_string(checkout.join("image.json")).ok(),
    };
    run
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn repository() -> String {
    format!("{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/coworking-analytics")
}

#[test]
fn a_good_build_pushes_every_tag_and_writes_the_pushed_reference() {
    let run = run_buildspec("");
    assert!(
        run.status.success(),
        "{:?}\n{}",
        run.status,
        run.calls.join("\n")
    );
    let expected: Vec<String> = TAGS
        .iter()
        .map(|tag| format!("{}:{tag}", repository()))
        .collect();
    assert_eq!(run.pushed(), expected);
    let build = run
        .calls
        .iter()
        .find(|call| call.starts_with("docker buildx build"))
        .expect("the image is built");
    for reference in &expected {
        assert!(build.contains(&format!("--tag {reference}")), "{build}");
    }
    assert_eq!(
        run.artifact.as_deref(),
        Some(format!("{{\"ImageURI\":\"{}:{}\"}}\n", repository(), TAGS[1]).as_str())
    );
    // The tests ran before anything was built or pushed.
    let position = |prefix: &str| {
        run.calls
            .iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix}: {:?}", run.calls))
    };
    assert!(position("cargo xtask test") < position("docker buildx build"));
}

#[test]
fn a_failing_tag_step_stops_the_build_before_any_push() {
    let run = run_buildspec("tags");
    assert!(!run.status.success(), "the build is reported failed");
    assert_eq!(run.status.code(), Some(11), "it stops in pre_build");
    assert!(
        run.output.contains("is not a positive integer"),
        "{}",
        run.output
    );
    assert!(run.pushed().is_empty(), "{:?}", run.calls);
    assert!(!run.calls.iter().any(|c| c.starts_with("cargo xtask test")));
    assert_eq!(run.artifact, None);
}

#[test]
fn failing_tests_or_pushes_fail_the_build_without_an_artifact() {
    let run = run_buildspec("test");
    assert!(!run.status.success());
    assert!(run.pushed().is_empty(), "{:?}", run.calls);
    assert_eq!(run.artifact, None);

    let run = run_buildspec("push");
    assert!(!run.status.success());
    assert_eq!(run.artifact, None, "nothing was pushed");
}
