use test_support::{spawn_app_with, Data};

#[tokio::test(flavor = "multi_thread")]
async fn health_check_answers_ok_without_touching_the_database() {
    let mut app = spawn_app_with(Data::Schema).await;
    app.db.stop().await;

    let response = app.get("/health_check").await;

    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "ok");
}
