//! `/api/v1/auth` and `/api/v1/users` over real HTTP: first-boot setup (and its race), sign-in,
//! refresh-token rotation with reuse detection, sign-out, signed-in devices (listed, one signed
//! out), the user's own profile, admin user management, rate limits, and that no password or
//! hash ever comes back. The sign-in flow and the devices list also run on a PostgreSQL metadata
//! store when `QUARRY_TEST_POSTGRES_URL` is set (otherwise those tests say "skipped").

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};
use support::product::{ADMIN_EMAIL, ADMIN_PASSWORD, ProductServer};

const PG_VAR: &str = "QUARRY_TEST_POSTGRES_URL";
const MEMBER_PASSWORD: &str = ADMIN_PASSWORD;

/// An anonymous call.
async fn anon(server: &ProductServer, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    server.call(method, path, None, body).await
}

/// A raw response, for headers and cookies.
async fn raw(
    server: &ProductServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = server.client.request(method, server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    request.send().await.expect("request")
}

/// A response body as JSON (reqwest here is built without its `json` feature).
async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_str(&response.text().await.expect("body")).expect("JSON body")
}

async fn login(server: &ProductServer, email: &str, password: &str) -> (u16, Value) {
    anon(server, Method::POST, "/api/v1/auth/login", Some(&json!({ "email": email, "password": password }))).await
}

/// Sign in and return (access token, refresh token).
async fn session(server: &ProductServer, email: &str, password: &str) -> (String, String) {
    let (status, reply) = login(server, email, password).await;
    assert_eq!(status, 200, "login: {reply}");
    (reply["access_token"].as_str().unwrap().to_string(), reply["refresh_token"].as_str().unwrap().to_string())
}

async fn refresh_with_body(server: &ProductServer, token: &str) -> (u16, Value) {
    anon(server, Method::POST, "/api/v1/auth/refresh", Some(&json!({ "refresh_token": token }))).await
}

/// The `quarry_rt=...` pair of a response's Set-Cookie, and the whole header.
fn refresh_cookie(response: &reqwest::Response) -> (String, String) {
    let header = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("quarry_rt="))
        .expect("a quarry_rt cookie")
        .to_string();
    let pair = header.split(';').next().unwrap().to_string();
    (pair, header)
}

#[tokio::test]
async fn setup_status_register_once_then_conflict() {
    let server = ProductServer::start().await;
    let (status, reply) = anon(&server, Method::GET, "/api/v1/auth/setup-status", None).await;
    assert_eq!((status, reply), (200, json!({ "needs_setup": true })));

    let body = json!({ "email": "Admin@Example.com", "password": ADMIN_PASSWORD, "display_name": "Ada" });
    let response = raw(&server, Method::POST, "/api/v1/auth/register", &[], Some(&body)).await;
    assert_eq!(response.status().as_u16(), 201);
    let (_, cookie) = refresh_cookie(&response);
    let reply: Value = json_of(response).await;
    assert_eq!(reply["token_type"], "bearer");
    assert_eq!(reply["expires_in"], 1800);
    assert_eq!(reply["user"]["email"], "admin@example.com");
    assert_eq!(reply["user"]["display_name"], "Ada");
    assert_eq!(reply["user"]["role"], "admin");
    assert_eq!(reply["user"]["id"].as_str().unwrap().len(), 36);
    let refresh = reply["refresh_token"].as_str().unwrap();
    assert!(cookie.starts_with(&format!("quarry_rt={refresh};")), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age=2592000", "Secure"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let token = reply["access_token"].as_str().unwrap();
    let (status, me) = server.get("/api/v1/auth/me", token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "admin");

    let (status, reply) = anon(&server, Method::GET, "/api/v1/auth/setup-status", None).await;
    assert_eq!((status, reply), (200, json!({ "needs_setup": false })));
    let again = json!({ "email": "second@example.com", "password": ADMIN_PASSWORD });
    let (status, reply) = anon(&server, Method::POST, "/api/v1/auth/register", Some(&again)).await;
    assert_eq!(status, 409, "{reply}");
    assert!(reply["detail"].as_str().unwrap().starts_with("Setup already complete"), "{reply}");
    assert_eq!(server.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn concurrent_registers_create_exactly_one_user() {
    let server = ProductServer::start().await;
    let attempts = (0..10).map(|i| {
        let body = json!({ "email": format!("racer{i}@example.com"), "password": ADMIN_PASSWORD });
        let server = &server;
        async move { anon(server, Method::POST, "/api/v1/auth/register", Some(&body)).await }
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let conflicts = results.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!((created, conflicts), (1, 9), "{results:?}");
    assert_eq!(server.store.count_users().await.unwrap(), 1);
}

#[tokio::test]
async fn bad_registrations_are_refused_and_change_nothing() {
    let server = ProductServer::start().await;
    let weak = json!({ "email": "a@example.com", "password": "short-one" });
    let (status, reply) = anon(&server, Method::POST, "/api/v1/auth/register", Some(&weak)).await;
    assert_eq!(status, 400, "{reply}");
    let detail = reply["detail"].as_str().unwrap();
    assert!(detail.contains("at least 12 characters") && detail.contains("uppercase"), "{detail}");
    assert!(!reply.to_string().contains("short-one"));

    let bad_email = json!({ "email": "not-an-email", "password": ADMIN_PASSWORD });
    let (status, reply) = anon(&server, Method::POST, "/api/v1/auth/register", Some(&bad_email)).await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["detail"][0]["loc"], json!(["body", "email"]));
    assert!(reply["detail"][0]["msg"].as_str().unwrap().contains("not a valid email"), "{reply}");
    assert!(!reply.to_string().contains(ADMIN_PASSWORD), "password echoed: {reply}");

    let missing = json!({ "password": ADMIN_PASSWORD });
    let (status, reply) = anon(&server, Method::POST, "/api/v1/auth/register", Some(&missing)).await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["detail"][0]["loc"], json!(["body", "email"]));
    assert!(!reply.to_string().contains(ADMIN_PASSWORD), "password echoed: {reply}");

    let response =
        raw(&server, Method::POST, "/api/v1/auth/register", &[("content-type", "application/json")], None).await;
    assert_eq!(response.status().as_u16(), 422);
    let malformed = server
        .client
        .post(server.url("/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(r#"{"email": "a@example.com", "password": "#)
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 422);
    let reply: Value = json_of(malformed).await;
    assert_eq!(reply["detail"][0]["type"], "json_invalid", "{reply}");

    let (status, reply) = anon(&server, Method::GET, "/api/v1/auth/setup-status", None).await;
    assert_eq!((status, reply), (200, json!({ "needs_setup": true })));
    assert_eq!(server.store.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn login_accepts_the_right_password_only() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let (status, reply) = login(&server, "ADMIN@example.com", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["user"]["email"], ADMIN_EMAIL);
    assert!(reply["refresh_token"].as_str().unwrap().len() >= 64);

    for (email, password) in [(ADMIN_EMAIL, "Wrong-Password-123"), ("nobody@example.com", ADMIN_PASSWORD), ("x", "y")] {
        let (status, reply) = login(&server, email, password).await;
        assert_eq!((status, reply), (401, json!({ "detail": "Invalid email or password" })), "{email}");
    }
    let (status, _) = anon(&server, Method::POST, "/api/v1/auth/login", Some(&json!({ "email": ADMIN_EMAIL }))).await;
    assert_eq!(status, 422);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let (_, first) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let (status, reply) = refresh_with_body(&server, &first).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["token_type"], "bearer");
    assert_eq!(reply["expires_in"], 1800);
    let second = reply["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let access = reply["access_token"].as_str().unwrap();
    assert_eq!(server.get("/api/v1/auth/me", access).await.0, 200);

    // The first token again: reuse. The whole family goes, the newest token with it.
    let (status, reply) = refresh_with_body(&server, &first).await;
    assert_eq!((status, reply), (401, json!({ "detail": "Refresh token reuse detected; sign in again" })));
    let (status, reply) = refresh_with_body(&server, &second).await;
    assert_eq!(status, 401, "{reply}");

    // Another sign-in is another family, untouched.
    let (_, other) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(refresh_with_body(&server, &other).await.0, 200);

    let (status, reply) = refresh_with_body(&server, "made-up-token").await;
    assert_eq!((status, reply), (401, json!({ "detail": "Invalid refresh token" })));
    let (status, reply) = anon(&server, Method::POST, "/api/v1/auth/refresh", None).await;
    assert_eq!((status, reply), (401, json!({ "detail": "Refresh token missing" })));
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_at_most_one_win() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let (_, token) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let attempts = (0..5).map(|_| refresh_with_body(&server, &token));
    let results = futures::future::join_all(attempts).await;
    let won = results.iter().filter(|(s, _)| *s == 200).count();
    assert!(won <= 1, "{results:?}");
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 401), "{results:?}");
    // Whoever won, the losers were reuse: the family is revoked, the winner's token too.
    for (status, reply) in &results {
        if *status == 200 {
            let newest = reply["refresh_token"].as_str().unwrap();
            assert_eq!(refresh_with_body(&server, newest).await.0, 401);
        }
    }
}

#[tokio::test]
async fn refresh_works_from_the_cookie_alone() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let body = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
    let response = raw(&server, Method::POST, "/api/v1/auth/login", &[], Some(&body)).await;
    let (cookie, _) = refresh_cookie(&response);

    let response = raw(&server, Method::POST, "/api/v1/auth/refresh", &[("cookie", &cookie)], None).await;
    assert_eq!(response.status().as_u16(), 200);
    let (next_cookie, header) = refresh_cookie(&response);
    assert_ne!(next_cookie, cookie);
    assert!(header.contains("HttpOnly") && header.contains("Path=/api/v1/auth"), "{header}");
    let reply: Value = json_of(response).await;
    assert_eq!(format!("quarry_rt={}", reply["refresh_token"].as_str().unwrap()), next_cookie);
    assert_eq!(server.get("/api/v1/auth/me", reply["access_token"].as_str().unwrap()).await.0, 200);

    // The spent cookie is reuse; the answer also clears the cookie.
    let response = raw(&server, Method::POST, "/api/v1/auth/refresh", &[("cookie", &cookie)], None).await;
    assert_eq!(response.status().as_u16(), 401);
    let (cleared, header) = refresh_cookie(&response);
    assert_eq!(cleared, "quarry_rt=");
    assert!(header.contains("Max-Age=0"), "{header}");
}

#[tokio::test]
async fn logout_refuses_the_access_token_and_its_refresh_token() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let (access, refresh) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (other_access, _) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(server.get("/api/v1/auth/me", &access).await.0, 200);

    let response = raw(
        &server,
        Method::POST,
        "/api/v1/auth/logout",
        &[("authorization", &format!("Bearer {access}"))],
        Some(&json!({ "refresh_token": refresh })),
    )
    .await;
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(refresh_cookie(&response).0, "quarry_rt=");

    let (status, reply) = server.get("/api/v1/auth/me", &access).await;
    assert_eq!((status, reply), (401, json!({ "detail": "Token revoked" })));
    assert_eq!(refresh_with_body(&server, &refresh).await.0, 401);
    // The other session is not affected.
    assert_eq!(server.get("/api/v1/auth/me", &other_access).await.0, 200);
    // Logging out needs a token.
    assert_eq!(anon(&server, Method::POST, "/api/v1/auth/logout", None).await.0, 401);
}

#[tokio::test]
async fn logout_all_ends_every_session() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let (access_a, refresh_a) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (access_b, refresh_b) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let (status, _) = server.call(Method::POST, "/api/v1/auth/logout-all", Some(&access_a), None).await;
    assert_eq!(status, 204);
    for access in [&access_a, &access_b] {
        let (status, reply) = server.get("/api/v1/auth/me", access).await;
        assert_eq!(status, 401, "{reply}");
    }
    for refresh in [&refresh_a, &refresh_b] {
        assert_eq!(refresh_with_body(&server, refresh).await.0, 401);
    }
    // Signing in again right away works: only tokens issued before are refused.
    let (access, refresh) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(server.get("/api/v1/auth/me", &access).await.0, 200);
    assert_eq!(refresh_with_body(&server, &refresh).await.0, 200);
}

/// Sign in from a device with `user_agent`: (access token, refresh token).
async fn device_session(server: &ProductServer, email: &str, user_agent: &str) -> (String, String) {
    let body = json!({ "email": email, "password": ADMIN_PASSWORD });
    let response = raw(server, Method::POST, "/api/v1/auth/login", &[("user-agent", user_agent)], Some(&body)).await;
    assert_eq!(response.status().as_u16(), 200);
    let reply = json_of(response).await;
    (reply["access_token"].as_str().unwrap().to_string(), reply["refresh_token"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn sessions_list_the_devices_and_one_can_be_signed_out() {
    device_sessions(&ProductServer::start().await).await;
}

/// The signed-in devices of the admin on `server` (a fresh one): listed, paged, one signed out.
async fn device_sessions(server: &ProductServer) {
    let admin = server.register_admin().await;
    let (laptop, _) = device_session(&server, ADMIN_EMAIL, "QuarryTest laptop").await;
    let (_, phone_refresh) = device_session(&server, ADMIN_EMAIL, "QuarryTest phone").await;
    let long_agent = "x".repeat(300);
    device_session(&server, ADMIN_EMAIL, &long_agent).await;

    // Four sign-ins (registration included), newest first, with what each device sent.
    let (status, list) = server.get("/api/v1/auth/sessions", &laptop).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!((list["total"].clone(), list["limit"].clone(), list["offset"].clone()), (json!(4), json!(50), json!(0)));
    let items = list["items"].as_array().expect("items");
    assert_eq!(items[0]["device_hint"].as_str().map(str::len), Some(255), "User-Agent cut to 255: {list}");
    assert_eq!(items[1]["device_hint"], "QuarryTest phone");
    assert_eq!(items[2]["device_hint"], "QuarryTest laptop");
    assert_eq!(items[1]["ip_address"], "127.0.0.1");
    assert!(items[1]["created_at"].is_string() && items[1]["expires_at"].is_string(), "{list}");
    assert!(items[1]["expires_at"].as_str() > items[1]["created_at"].as_str());
    let phone = items[1]["id"].as_str().expect("id").to_string();
    let phone_since = items[1]["created_at"].clone();

    // A refresh rotates the token, but it is the same device: same id, same sign-in time.
    let (status, reply) = refresh_with_body(&server, &phone_refresh).await;
    assert_eq!(status, 200, "{reply}");
    let phone_refresh = reply["refresh_token"].as_str().unwrap().to_string();
    let (_, list) = server.get("/api/v1/auth/sessions", &laptop).await;
    assert_eq!(list["total"], 4, "{list}");
    let listed = list["items"].as_array().unwrap().iter().find(|s| s["id"] == phone.as_str()).expect("phone");
    assert_eq!(listed["created_at"], phone_since);
    let (_, page) = server.get("/api/v1/auth/sessions?limit=1&offset=1", &laptop).await;
    assert_eq!((page["items"].as_array().map(Vec::len), page["total"].clone()), (Some(1), json!(4)), "{page}");
    assert_eq!(page["items"][0]["id"], phone.as_str());

    // Another user sees only their own sessions and cannot sign the admin's devices out.
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let (_, theirs) = server.get("/api/v1/auth/sessions", &member).await;
    assert_eq!(theirs["total"], 1, "{theirs}");
    let (status, reply) = server.delete(&format!("/api/v1/auth/sessions/{phone}"), &member).await;
    assert_eq!((status, reply), (404, json!({ "detail": "Session not found" })));
    let (status, reply) = refresh_with_body(&server, &phone_refresh).await;
    assert_eq!(status, 200, "the phone is still signed in: {reply}");
    let phone_refresh = reply["refresh_token"].as_str().unwrap().to_string();

    // The owner signs the phone out: its refresh token stops working, the others do not.
    let (status, reply) = server.delete(&format!("/api/v1/auth/sessions/{phone}"), &laptop).await;
    assert_eq!(status, 204, "{reply}");
    assert_eq!(refresh_with_body(&server, &phone_refresh).await.0, 401, "the phone is signed out");
    let (_, list) = server.get("/api/v1/auth/sessions", &laptop).await;
    assert_eq!(list["total"], 3, "{list}");
    assert!(list["items"].as_array().unwrap().iter().all(|s| s["id"] != phone.as_str()));
    assert_eq!(server.get("/api/v1/auth/me", &laptop).await.0, 200);
    let (status, _) = server.delete(&format!("/api/v1/auth/sessions/{phone}"), &laptop).await;
    assert_eq!(status, 404, "gone already");
    let (status, _) = server.delete("/api/v1/auth/sessions/not-a-session", &laptop).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn me_shows_and_changes_the_profile_and_password() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let body = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
    let response = raw(&server, Method::POST, "/api/v1/auth/login", &[], Some(&body)).await;
    let (cookie, _) = refresh_cookie(&response);
    let reply: Value = json_of(response).await;
    let access = reply["access_token"].as_str().unwrap().to_string();
    let (_, other_refresh) = session(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let (status, me) = server.get("/api/v1/auth/me", &access).await;
    assert_eq!(status, 200);
    assert_eq!(me["email"], ADMIN_EMAIL);
    assert_eq!(me["display_name"], "Admin");
    assert_eq!(me["is_active"], true);

    let (status, me) = server.put("/api/v1/auth/me", &access, &json!({ "display_name": "  Ada L. " })).await;
    assert_eq!((status, me["display_name"].clone()), (200, json!("Ada L.")));
    let (status, _) = server.put("/api/v1/auth/me", &access, &json!({ "display_name": "x".repeat(101) })).await;
    assert_eq!(status, 422);

    const NEW: &str = "Another-Good-Pass-42";
    let cases = [
        (json!({ "new_password": NEW }), "current_password is required"),
        (json!({ "current_password": "Wrong-Password-1", "new_password": NEW }), "Current password is incorrect"),
        (json!({ "current_password": ADMIN_PASSWORD, "new_password": "weakweakweak" }), "too weak"),
    ];
    for (body, expected) in cases {
        let (status, reply) = server.put("/api/v1/auth/me", &access, &body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(reply["detail"].as_str().unwrap().contains(expected), "{reply}");
    }
    assert_eq!(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200, "nothing changed yet");

    let change = json!({ "current_password": ADMIN_PASSWORD, "new_password": NEW });
    let response = raw(
        &server,
        Method::PUT,
        "/api/v1/auth/me",
        &[("authorization", &format!("Bearer {access}")), ("cookie", &cookie)],
        Some(&change),
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    let reply: Value = json_of(response).await;
    assert_eq!(reply["email"], ADMIN_EMAIL);

    assert_eq!(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 401);
    assert_eq!(login(&server, ADMIN_EMAIL, NEW).await.0, 200);
    // Tokens issued before the change are refused; this device goes on through its cookie, the
    // other device's refresh token is revoked.
    assert_eq!(server.get("/api/v1/auth/me", &access).await.0, 401);
    assert_eq!(refresh_with_body(&server, &other_refresh).await.0, 401);
    let response = raw(&server, Method::POST, "/api/v1/auth/refresh", &[("cookie", &cookie)], None).await;
    assert_eq!(response.status().as_u16(), 200);
    let reply: Value = json_of(response).await;
    assert_eq!(server.get("/api/v1/auth/me", reply["access_token"].as_str().unwrap()).await.0, 200);
}

#[tokio::test]
async fn users_need_a_token_and_the_admin_role() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;

    for path in ["/api/v1/users", "/api/v1/auth/me"] {
        let (status, reply) = anon(&server, Method::GET, path, None).await;
        assert_eq!((status, reply), (401, json!({ "detail": "Not authenticated" })), "{path}");
        let (status, _) = server.get(path, "not-a-token").await;
        assert_eq!(status, 401, "{path}");
    }
    let (status, reply) = server.get("/api/v1/users", &member).await;
    assert_eq!(status, 403, "{reply}");
    let (status, _) =
        server.post("/api/v1/users", &member, &json!({ "email": "x@example.com", "password": ADMIN_PASSWORD })).await;
    assert_eq!(status, 403);
    let (status, me) = server.get("/api/v1/auth/me", &member).await;
    assert_eq!((status, me["role"].clone()), (200, json!("member")));
}

#[tokio::test]
async fn admin_manages_users() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let body =
        json!({ "email": "Bob@Example.com", "password": MEMBER_PASSWORD, "role": "member", "display_name": "Bob" });
    let (status, bob) = server.post("/api/v1/users", &admin, &body).await;
    assert_eq!(status, 201, "{bob}");
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["role"], "member");
    assert_eq!(bob["is_active"], true);
    let bob_id = bob["id"].as_str().unwrap().to_string();

    let duplicate = json!({ "email": "BOB@example.com", "password": MEMBER_PASSWORD, "role": "member" });
    let (status, reply) = server.post("/api/v1/users", &admin, &duplicate).await;
    assert_eq!(status, 409, "{reply}");
    let bad_role = json!({ "email": "c@example.com", "password": MEMBER_PASSWORD, "role": "owner" });
    assert_eq!(server.post("/api/v1/users", &admin, &bad_role).await.0, 422);
    let weak = json!({ "email": "c@example.com", "password": "weak", "role": "member" });
    assert_eq!(server.post("/api/v1/users", &admin, &weak).await.0, 400);

    let (status, page) = server.get("/api/v1/users?limit=1&offset=1", &admin).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!((page["total"].clone(), page["limit"].clone(), page["offset"].clone()), (json!(2), json!(1), json!(1)));
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], bob_id.as_str());
    assert_eq!(server.get("/api/v1/users?limit=0", &admin).await.0, 422);

    let (status, got) = server.get(&format!("/api/v1/users/{bob_id}"), &admin).await;
    assert_eq!((status, got["display_name"].clone()), (200, json!("Bob")));
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(server.get(&format!("/api/v1/users/{unknown}"), &admin).await.0, 404);
    assert_eq!(server.get("/api/v1/users/not-a-uuid", &admin).await.0, 404);
    assert_eq!(server.put(&format!("/api/v1/users/{unknown}"), &admin, &json!({ "role": "admin" })).await.0, 404);
    assert_eq!(server.delete(&format!("/api/v1/users/{unknown}"), &admin).await.0, 404);

    // Promotion takes effect on the next sign-in; the old token is refused at once.
    let (bob_token, _) = session(&server, "bob@example.com", MEMBER_PASSWORD).await;
    let (status, changed) = server
        .put(&format!("/api/v1/users/{bob_id}"), &admin, &json!({ "role": "admin", "display_name": "Robert" }))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!((changed["role"].clone(), changed["display_name"].clone()), (json!("admin"), json!("Robert")));
    assert_eq!(server.get("/api/v1/auth/me", &bob_token).await.0, 401);
    let (bob_token, _) = session(&server, "bob@example.com", MEMBER_PASSWORD).await;
    assert_eq!(server.get("/api/v1/users", &bob_token).await.0, 200);

    // An admin sets a new password.
    const NEW: &str = "Fresh-Password-77";
    assert_eq!(server.put(&format!("/api/v1/users/{bob_id}"), &admin, &json!({ "password": "weak" })).await.0, 400);
    assert_eq!(server.put(&format!("/api/v1/users/{bob_id}"), &admin, &json!({ "password": NEW })).await.0, 200);
    assert_eq!(login(&server, "bob@example.com", MEMBER_PASSWORD).await.0, 401);
    let (bob_token, _) = session(&server, "bob@example.com", NEW).await;

    let (status, _) = server.delete(&format!("/api/v1/users/{bob_id}"), &admin).await;
    assert_eq!(status, 204);
    assert_eq!(server.get(&format!("/api/v1/users/{bob_id}"), &admin).await.0, 404);
    assert_eq!(server.get("/api/v1/auth/me", &bob_token).await.0, 401);
    assert_eq!(login(&server, "bob@example.com", NEW).await.0, 401);
}

#[tokio::test]
async fn a_disabled_user_is_refused() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let (_, member_refresh) = session(&server, "member@example.com", MEMBER_PASSWORD).await;
    let (_, page) = server.get("/api/v1/users", &admin).await;
    let id = page["items"][1]["id"].as_str().unwrap().to_string();

    let (status, reply) = server.put(&format!("/api/v1/users/{id}"), &admin, &json!({ "is_active": false })).await;
    assert_eq!((status, reply["is_active"].clone()), (200, json!(false)));
    assert_eq!(server.get("/api/v1/auth/me", &member).await.0, 401);
    let (status, reply) = login(&server, "member@example.com", MEMBER_PASSWORD).await;
    assert_eq!((status, reply), (403, json!({ "detail": "Account is disabled" })));
    // A wrong password still says only that.
    assert_eq!(login(&server, "member@example.com", "Wrong-Password-1").await.0, 401);
    assert_eq!(refresh_with_body(&server, &member_refresh).await.0, 401);

    assert_eq!(server.put(&format!("/api/v1/users/{id}"), &admin, &json!({ "is_active": true })).await.0, 200);
    assert_eq!(login(&server, "member@example.com", MEMBER_PASSWORD).await.0, 200);
}

#[tokio::test]
async fn the_last_active_admin_stays() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let (_, me) = server.get("/api/v1/auth/me", &admin).await;
    let admin_id = me["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/users/{admin_id}");

    for change in [json!({ "role": "member" }), json!({ "is_active": false })] {
        let (status, reply) = server.put(&path, &admin, &change).await;
        assert_eq!(status, 409, "{change}: {reply}");
        assert_eq!(reply["detail"], "At least one active admin must remain");
    }
    assert_eq!(server.delete(&path, &admin).await.0, 409);
    assert_eq!(server.get("/api/v1/users", &admin).await.0, 200, "the refused changes changed nothing");

    // A disabled second admin does not count; an active one does.
    let second = server.add_user(&admin, "second@example.com", "admin").await;
    let (_, second_me) = server.get("/api/v1/auth/me", &second).await;
    let second_path = format!("/api/v1/users/{}", second_me["id"].as_str().unwrap());
    assert_eq!(server.put(&second_path, &admin, &json!({ "is_active": false })).await.0, 200);
    assert_eq!(server.put(&path, &admin, &json!({ "role": "member" })).await.0, 409);
    assert_eq!(server.put(&second_path, &admin, &json!({ "is_active": true })).await.0, 200);
    let (status, reply) = server.put(&path, &admin, &json!({ "role": "member" })).await;
    assert_eq!((status, reply["role"].clone()), (200, json!("member")));
    // The demoted admin's token was issued before the change.
    assert_eq!(server.get("/api/v1/users", &admin).await.0, 401);
}

#[tokio::test]
async fn sign_in_routes_are_rate_limited_per_client() {
    let server = ProductServer::start().await;
    server.register_admin().await;
    let bad = json!({ "email": ADMIN_EMAIL, "password": "Wrong-Password-1" });
    for i in 0..10 {
        let (status, _) = anon(&server, Method::POST, "/api/v1/auth/login", Some(&bad)).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let response = raw(&server, Method::POST, "/api/v1/auth/login", &[], Some(&bad)).await;
    assert_eq!(response.status().as_u16(), 429);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let reply: Value = json_of(response).await;
    assert_eq!(reply["detail"], format!("Too many requests, retry in {retry} seconds"));
    // Even the right password waits.
    assert_eq!(login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 429);

    // Behind a local proxy, the forwarded client address counts, so another client is not blocked.
    let good = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
    let response =
        raw(&server, Method::POST, "/api/v1/auth/login", &[("x-forwarded-for", "198.51.100.23")], Some(&good)).await;
    assert_eq!(response.status().as_u16(), 200);
    // Other routes have their own count.
    assert_eq!(refresh_with_body(&server, "unknown").await.0, 401);
}

#[tokio::test]
async fn no_response_or_log_carries_a_password_or_hash() {
    support::capture_logs();
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let member = server.add_user(&admin, "member@example.com", "member").await;
    let mut bodies = Vec::new();
    let (_, page) = server.get("/api/v1/users", &admin).await;
    let id = page["items"][1]["id"].as_str().unwrap().to_string();
    bodies.push(page);
    bodies.push(server.get(&format!("/api/v1/users/{id}"), &admin).await.1);
    bodies.push(server.get("/api/v1/auth/me", &member).await.1);
    bodies.push(login(&server, "member@example.com", MEMBER_PASSWORD).await.1);
    bodies.push(server.put(&format!("/api/v1/users/{id}"), &admin, &json!({ "display_name": "M" })).await.1);
    bodies.push(
        server
            .put("/api/v1/auth/me", &admin, &json!({ "current_password": 42, "new_password": ADMIN_PASSWORD }))
            .await
            .1,
    );
    bodies.push(server.post("/api/v1/users", &admin, &json!({ "email": "bad", "password": ADMIN_PASSWORD })).await.1);
    bodies.push(
        server
            .post("/api/v1/users", &admin, &json!({ "email": "z@example.com", "password": ["Secret-Pass-1"] }))
            .await
            .1,
    );
    for body in bodies {
        let text = body.to_string();
        for forbidden in ["$argon2", "password_hash", ADMIN_PASSWORD, "Secret-Pass-1"] {
            assert!(!text.contains(forbidden), "{forbidden} in {text}");
        }
    }
    let logs = support::logs();
    assert!(logs.contains("first admin registered"), "the logs were captured");
    for forbidden in ["$argon2", ADMIN_PASSWORD, "Secret-Pass-1"] {
        assert!(!logs.contains(forbidden), "{forbidden} in the logs");
    }
}

/// A fresh schema on the test PostgreSQL, and the store URL that selects it.
async fn postgres_schema() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var(PG_VAR) else {
        eprintln!("skipped: {PG_VAR} not set (the PostgreSQL metadata store case)");
        return None;
    };
    let schema = format!("quarry_auth_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.expect("create schema");
    admin.close().await.expect("close");
    let mut url = url::Url::parse(&admin_url).expect("test URL parses");
    url.query_pairs_mut().append_pair("options", &format!("-c search_path={schema}"));
    Some((admin_url, schema, url.to_string()))
}

#[tokio::test]
async fn postgres_store_shared_by_two_servers() {
    let Some((admin_url, schema, url)) = postgres_schema().await else { return };
    let outcome = {
        let url = url.clone();
        tokio::spawn(async move {
            let store_a = quarry::store::Store::open(&url).await.expect("open store");
            let store_b = quarry::store::Store::open(&url).await.expect("open store again");
            let a = ProductServer::start_on(store_a, tempfile::tempdir().unwrap()).await;
            let b = ProductServer::start_on(store_b, tempfile::tempdir().unwrap()).await;

            // Both servers race to register: one user in all.
            let attempts = (0..6).map(|i| {
                let server = if i % 2 == 0 { &a } else { &b };
                let body = json!({ "email": format!("racer{i}@example.com"), "password": ADMIN_PASSWORD });
                async move { anon(server, Method::POST, "/api/v1/auth/register", Some(&body)).await }
            });
            let results = futures::future::join_all(attempts).await;
            assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
            assert_eq!(a.store.count_users().await.unwrap(), 1);
            let winner =
                results.iter().find(|(s, _)| *s == 201).unwrap().1["user"]["email"].as_str().unwrap().to_string();

            // A token from one server works on the other (one signing key in the store).
            let (access, refresh) = session(&a, &winner, ADMIN_PASSWORD).await;
            assert_eq!(b.get("/api/v1/auth/me", &access).await.0, 200);
            let (status, reply) = refresh_with_body(&b, &refresh).await;
            assert_eq!(status, 200, "{reply}");
            let newest = reply["refresh_token"].as_str().unwrap().to_string();
            // Reuse seen by the other server still revokes the family.
            assert_eq!(refresh_with_body(&a, &refresh).await.0, 401);
            assert_eq!(refresh_with_body(&b, &newest).await.0, 401);

            let member = a.add_user(&access, "member@example.com", "member").await;
            assert_eq!(b.get("/api/v1/users", &member).await.0, 403);
            let (status, _) = b.call(Method::POST, "/api/v1/auth/logout-all", Some(&access), None).await;
            assert_eq!(status, 204);
            assert_eq!(a.get("/api/v1/auth/me", &access).await.0, 401);
            a.store.close().await;
            b.store.close().await;
        })
        .await
    };
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn sessions_on_a_postgres_store() {
    let Some((admin_url, schema, url)) = postgres_schema().await else { return };
    let outcome = tokio::spawn(async move {
        let store = quarry::store::Store::open(&url).await.expect("open store");
        let server = ProductServer::start_on(store, tempfile::tempdir().unwrap()).await;
        device_sessions(&server).await;
        server.store.close().await;
    })
    .await;
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to the test PostgreSQL");
    admin.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).await.expect("drop schema");
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let server = ProductServer::start().await;
    let admin = server.register_admin().await;
    let (_, me) = server.get("/api/v1/auth/me", &admin).await;
    let user_id = me["id"].as_str().unwrap().to_string();

    // An access token signed with the server's own key (the one it keeps in the store), expired.
    let key = server.store.auth_key("jwt_hs256", "unused").await.unwrap();
    let keys = quarry::auth::tokens::AccessKeys::new(&hex::decode(key).unwrap());
    let past = chrono::Utc::now() - chrono::Duration::seconds(120);
    let expired = keys.issue(&user_id, past, 60).unwrap().token;
    let (status, reply) = server.get("/api/v1/auth/me", &expired).await;
    assert_eq!((status, reply), (401, json!({ "detail": "Token expired" })));
    let fresh = keys.issue(&user_id, chrono::Utc::now(), 60).unwrap().token;
    assert_eq!(server.get("/api/v1/auth/me", &fresh).await.0, 200, "the same key signs valid tokens");
    let foreign = quarry::auth::tokens::AccessKeys::new(b"some-other-secret-of-at-least-32-bytes");
    let forged = foreign.issue(&user_id, chrono::Utc::now(), 60).unwrap().token;
    let (status, reply) = server.get("/api/v1/auth/me", &forged).await;
    assert_eq!((status, reply), (401, json!({ "detail": "Not authenticated" })));

    // A refresh token past its expiry.
    let token = "an-expired-refresh-token";
    let row = quarry::store::users::NewRefreshToken {
        id: uuid::Uuid::new_v4().to_string(),
        token_hash: quarry::auth::refresh::digest(token),
        created_at: past - chrono::Duration::days(31),
        expires_at: past,
        device_hint: None,
        ip: None,
    };
    server.store.insert_refresh_token(&user_id, "family-x", &row).await.unwrap();
    let (status, reply) = refresh_with_body(&server, token).await;
    assert_eq!((status, reply), (401, json!({ "detail": "Refresh token expired" })));
}
