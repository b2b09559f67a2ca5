//! Every `/api/v1` route of the catalog is served, guarded as it says, and listed in
//! `/openapi.json`: 401 without a token on every non-public route, 403 for a member on every
//! admin route, and the public ones answer (not 404/405).

mod support;

use quarry::api::v1::catalog::{Access, ROUTES};
use reqwest::Method;
use serde_json::json;
use support::product::ProductServer;

/// The route's path with placeholders filled with an id nothing has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "00000000-0000-4000-8000-000000000000" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).expect("method")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_served_guarded_and_documented() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let body = json!({});
    let (_, spec) = server.call(Method::GET, "/openapi.json", None, None).await;

    for route in ROUTES {
        let path = format!("/api/v1{}", concrete(route.path));
        let documented = format!("/api/v1{}", route.path);
        assert!(
            spec["paths"][&documented][route.method.to_ascii_lowercase()].is_object(),
            "{} {documented} is missing from /openapi.json",
            route.method
        );
        let (anonymous, reply) = server.call(method(route.method), &path, None, Some(&body)).await;
        match route.access {
            Access::Public => {
                assert!(![404, 405, 500].contains(&anonymous), "{} {path}: {anonymous} {reply}", route.method)
            }
            Access::User | Access::Admin => {
                assert_eq!(anonymous, 401, "{} {path} without a token: {reply}", route.method);
                assert!(reply["detail"].is_string(), "errors say why in `detail`: {reply}");
            }
        }
        if route.access == Access::Admin {
            let (status, reply) = server.call(method(route.method), &path, Some(&member), Some(&body)).await;
            assert_eq!(status, 403, "{} {path} as a member: {reply}", route.method);
        }
    }
}
