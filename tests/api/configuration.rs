use test_support::{
    db_variables, host_builder, spawn_app_on, Data, TestDatabase, SUPERUSER_PASSWORD,
};

/// Spin refuses to start an app whose required variable has no value, so the
/// component never runs without `db_password`; the host must do the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_password_stops_the_app_from_starting() {
    let db = TestDatabase::new(Data::Schema).await;
    let mut variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    variables.retain(|(name, _)| name != "SPIN_VARIABLE_DB_PASSWORD");

    let err = match host_builder(&variables).start().await {
        Ok(_) => panic!("the host started without db_password"),
        Err(err) => format!("{err:#}"),
    };

    assert!(
        err.contains(r#"no provider resolved required variable(s): [Key("db_password")]"#),
        "{err}"
    );
    assert!(!err.contains(SUPERUSER_PASSWORD));
}

/// An empty value resolves in Spin (a ConfigMap key left blank, say): the
/// endpoints that need the database say which variable to fix.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_password_is_named_in_the_error_and_the_log() {
    let db = TestDatabase::new(Data::Schema).await;
    let variables = db_variables(&db, "postgres", "");
    let app = spawn_app_on(db, &variables).await;

    assert_eq!(app.get_text("/health_check").await, (200, "ok".into()));
    assert_eq!(
        app.get_text("/readiness_check").await,
        (500, "failed".into())
    );
    for report in ["/api/reports/daily_usage", "/api/reports/user_visits"] {
        let (status, body) = app.get_text(report).await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("db_password"), "{body}");
    }
    let logs = app.host.logs();
    assert!(
        logs.contains("required variable db_password is not set"),
        "{logs}"
    );
}

/// Any user name and password work: the address is percent-encoded.
#[tokio::test(flavor = "multi_thread")]
async fn special_characters_in_user_names_and_passwords_work() {
    let credentials = [
        ("reader", "p@ss:w/rd#1?"),
        ("reader2", "100% & more"),
        ("reader3", "with spaces and 'quotes' and \"double\""),
        ("reader4", "back\\slash+plus=equals;semi"),
        ("reader5", "Zoë – 日本語 🚀"),
        ("us@er:odd/name", "a@b:c/d?e#f%g&h"),
        ("Ünïcode user", "ärger"),
    ];
    let db = TestDatabase::new(Data::Seed).await;
    for (user, password) in credentials {
        let user_sql = user.replace('"', "\"\"");
        let password_sql = password.replace('\'', "''");
        db.execute(&format!(
            "CREATE ROLE \"{user_sql}\" LOGIN PASSWORD '{password_sql}';
             GRANT SELECT ON users, tokens TO \"{user_sql}\";"
        ))
        .await;
    }
    for (user, password) in credentials {
        let variables = db_variables(&db, user, password);
        // A host over the same database for each: not a TestApp, which owns its own.
        let host = host_builder(&variables)
            .start()
            .await
            .expect("start the host");
        for (path, body) in [
            ("/readiness_check", Some("ok")),
            ("/api/reports/daily_usage", None),
        ] {
            let response = reqwest::get(format!("{}{path}", host.base_url()))
                .await
                .expect("send");
            assert_eq!(response.status(), 200, "user {user:?}: {path}");
            let text = response.text().await.expect("a body");
            if let Some(body) = body {
                assert_eq!(text, body, "user {user:?}");
            }
        }
        assert_eq!(host.leak_report().findings, Vec::<String>::new());
    }
}

/// Unset optional variables take the Flask defaults; `db_host` is 127.0.0.1.
#[tokio::test(flavor = "multi_thread")]
async fn unset_host_and_name_default_to_the_flask_values() {
    let db = TestDatabase::new(Data::Schema).await;
    let mut variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    variables
        .retain(|(name, _)| name != "SPIN_VARIABLE_DB_HOST" && name != "SPIN_VARIABLE_DB_NAME");
    let app = spawn_app_on(db, &variables).await;

    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
}

/// `allowed_outbound_hosts` follows `db_host`, so any host name the operator sets
/// is allowed, and only that one.
#[tokio::test(flavor = "multi_thread")]
async fn the_allowed_outbound_host_follows_db_host() {
    let db = TestDatabase::new(Data::Schema).await;
    let mut variables = db_variables(&db, "postgres", SUPERUSER_PASSWORD);
    variables.retain(|(name, _)| name != "SPIN_VARIABLE_DB_HOST");
    variables.push(("SPIN_VARIABLE_DB_HOST".into(), "localhost".into()));
    let app = spawn_app_on(db, &variables).await;

    assert_eq!(app.get_text("/readiness_check").await, (200, "ok".into()));
}
