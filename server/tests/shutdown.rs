mod common;

use common::TestServer;

#[tokio::test]
async fn members_are_told_server_shutdown() {
    let s = TestServer::start().await;
    s.room("r", &[("a", "attendee"), ("b", "attendee")]).await;
    let (mut a, _) = s.join("r", "a").await;
    let (mut b, _) = s.join("r", "b").await;
    let stopping = tokio::spawn(async move { s.stop().await });
    assert_eq!(a.closed_with().await, "serverShutdown");
    assert_eq!(b.closed_with().await, "serverShutdown");
    tokio::time::timeout(common::WAIT, stopping)
        .await
        .expect("server stopped")
        .unwrap();
}
