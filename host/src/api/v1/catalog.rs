//! The `/api/v1` routes as `/openapi.json` lists them: method, path, group, who may call it, and
//! a summary. The handlers stay plain axum functions; this table is the one place that describes
//! them, and a test walks it against the real router so it cannot drift (a route listed here that
//! the router does not serve fails the test).

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, ObjectBuilder, OpenApi, Required, ResponseBuilder, ResponsesBuilder};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (sign-in, first-boot setup).
    Public,
    /// Any signed-in user.
    User,
    /// Admins only.
    Admin,
}

/// One route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'static str,
    /// Under `/api/v1`, with `{param}` placeholders.
    pub path: &'static str,
    /// The resource group (an OpenAPI tag).
    pub tag: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What it does.
    pub summary: &'static str,
}

const fn r(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    access: Access,
    summary: &'static str,
) -> Route {
    Route { method, path, tag, access, summary }
}

use Access::{Admin, Public, User};

/// Every `/api/v1` route.
pub const ROUTES: &[Route] = &[
    r("GET", "/auth/setup-status", "Auth", Public, "Whether the first admin still has to be created"),
    r("POST", "/auth/register", "Auth", Public, "Create the first admin (only while no user exists)"),
    r("POST", "/auth/login", "Auth", Public, "Sign in: access token, refresh token (body and cookie)"),
    r("POST", "/auth/refresh", "Auth", Public, "Rotate a refresh token; reuse of a rotated one revokes its family"),
    r("POST", "/auth/logout", "Auth", User, "Revoke this access token and its refresh token"),
    r("POST", "/auth/logout-all", "Auth", User, "Revoke every token of the user"),
    r("GET", "/auth/me", "Auth", User, "The signed-in user"),
    r("PUT", "/auth/me", "Auth", User, "Change display name or password"),
    r("GET", "/auth/sessions", "Auth", User, "The user's signed-in devices (live refresh-token families)"),
    r("DELETE", "/auth/sessions/{id}", "Auth", User, "Sign one device out (revoke its refresh-token family)"),
    r("GET", "/users", "Users", Admin, "List users"),
    r("POST", "/users", "Users", Admin, "Add a user with a role"),
    r("GET", "/users/{id}", "Users", Admin, "One user"),
    r("PUT", "/users/{id}", "Users", Admin, "Change a user's role, name, password or active flag"),
    r("DELETE", "/users/{id}", "Users", Admin, "Delete a user"),
    r("GET", "/datasources", "Connections", User, "Database types and their connection fields"),
    r("POST", "/connections/test", "Connections", Admin, "Test an unsaved connection"),
    r("POST", "/connections", "Connections", Admin, "Save a connection (credentials encrypted)"),
    r("GET", "/connections", "Connections", User, "List connections"),
    r("GET", "/connections/{id}", "Connections", User, "One connection with its privacy settings"),
    r("DELETE", "/connections/{id}", "Connections", Admin, "Delete a connection"),
    r("POST", "/connections/{id}/test", "Connections", Admin, "Test a saved connection"),
    r("GET", "/connections/{id}/config", "Connections", Admin, "The connection's settings, secrets masked"),
    r("PUT", "/connections/{id}/config", "Connections", Admin, "Rename or change the connection's settings"),
    r("PUT", "/connections/{id}/privacy", "Connections", Admin, "Excluded tables and columns, masking, row filter"),
    r("PUT", "/connections/{id}/execution-mode", "Connections", Admin, "auto_execute, review_first or generate_only"),
    r("GET", "/connections/{id}/schema", "Schema", User, "The cached schema (ETag)"),
    r("POST", "/connections/{id}/schema/refresh", "Schema", Admin, "Read the schema again"),
    r("GET", "/connections/{id}/semantic", "Semantic Model", User, "The semantic model (ETag)"),
    r("PUT", "/connections/{id}/semantic", "Semantic Model", Admin, "Update the semantic model (tables merge)"),
    r("DELETE", "/connections/{id}/semantic", "Semantic Model", Admin, "Remove the semantic model"),
    r("POST", "/chat", "Chat", User, "Ask a question; the answer streams as server-sent events"),
    r("POST", "/chat/execute/{message_id}", "Chat", Admin, "Run a query held for approval (once, validated again)"),
    r("POST", "/chat/edit/{message_id}", "Chat", User, "Run edited SQL after full validation"),
    r("POST", "/chat/sort/{message_id}", "Chat", User, "An answer's rows again, sorted by one of its columns"),
    r("POST", "/chat/feedback/{message_id}", "Chat", User, "Rate an answer: 👍 adds an example, 👎 evicts the cache"),
    r("DELETE", "/chat/feedback/{message_id}", "Chat", User, "Take a rating back"),
    r("GET", "/chat/sessions", "Sessions", User, "The user's conversations"),
    r("GET", "/chat/sessions/{id}", "Sessions", User, "One conversation"),
    r("DELETE", "/chat/sessions/{id}", "Sessions", User, "Delete a conversation"),
    r("GET", "/chat/sessions/{id}/history", "Sessions", User, "A conversation's messages in order"),
    r("GET", "/chat/sessions/{id}/events", "Sessions", User, "Watch a conversation's turns live (SSE)"),
    r("GET", "/chat/cache/stats", "Cache", User, "Entries, hits, misses, hit rate, top questions"),
    r("GET", "/chat/cache/{connection_id}/entries", "Cache", User, "Browse a connection's cached answers"),
    r("DELETE", "/chat/cache/{connection_id}", "Cache", Admin, "Clear a connection's cache"),
    r("DELETE", "/chat/cache/entries/{entry_id}", "Cache", Admin, "Delete one cached answer"),
    r("GET", "/chat/examples/{id}", "Examples", User, "A connection's verified examples"),
    r("POST", "/chat/examples/{id}", "Examples", User, "Add a verified example (SQL validated)"),
    r("PUT", "/chat/examples/{id}", "Examples", User, "Change an example (SQL validated)"),
    r("DELETE", "/chat/examples/{id}", "Examples", Admin, "Delete an example"),
    r("GET", "/providers", "Providers", User, "Saved provider configs, plus one entry per unconfigured type"),
    r("POST", "/providers/test", "Providers", Admin, "Test unsaved provider settings"),
    r("POST", "/providers/models", "Providers", Admin, "List models with unsaved settings"),
    r("POST", "/providers/{key}", "Providers", Admin, "Save a config of provider type {key} (API key encrypted)"),
    r("GET", "/providers/{key}", "Providers", User, "One provider config"),
    r("DELETE", "/providers/{key}", "Providers", Admin, "Delete a provider config"),
    r("PUT", "/providers/{id}/config", "Providers", Admin, "Change a provider config"),
    r("POST", "/providers/{id}/models", "Providers", Admin, "List models with a saved config"),
    r("POST", "/providers/{id}/test", "Providers", Admin, "Test a saved config"),
    r("GET", "/export/messages/{message_id}/csv", "Export", User, "An answer's stored (masked) results as CSV"),
    r("GET", "/settings", "Settings", User, "Live settings"),
    r("PUT", "/settings", "Settings", Admin, "Change settings (applied at once, on every replica)"),
];

/// Add every route of [`ROUTES`] to `spec` under `/api/v1`.
pub fn document(spec: &mut OpenApi) {
    for route in ROUTES {
        let method = match route.method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            _ => HttpMethod::Delete,
        };
        let mut operation = OperationBuilder::new()
            .tag(route.tag)
            .summary(Some(route.summary))
            .description(Some(access_note(route.access)))
            .responses(responses(route));
        for name in path_params(route.path) {
            operation = operation
                .parameter(ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True));
        }
        if matches!(route.method, "POST" | "PUT") {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .content("application/json", Content::new(Some(ObjectBuilder::new().build())))
                    .build(),
            ));
        }
        if route.access != Access::Public {
            operation = operation.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        let path = format!("/api/v1{}", route.path);
        let item = PathItem::new(method, operation.build());
        match spec.paths.paths.get_mut(&path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                spec.paths.paths.insert(path, item);
            }
        }
    }
}

fn access_note(access: Access) -> &'static str {
    match access {
        Access::Public => "No token needed.",
        Access::User => "Any signed-in user (`Authorization: Bearer <access_token>`); 401 without a valid token.",
        Access::Admin => "Admins only: 401 without a valid token, 403 for a member.",
    }
}

fn responses(route: &Route) -> utoipa::openapi::Responses {
    let ok = if route.path == "/chat" && route.method == "POST" {
        ResponseBuilder::new()
            .description("`text/event-stream`: status, token, sql, row_batch, explanation, error, done events")
    } else if route.path.starts_with("/export/") {
        ResponseBuilder::new().description("`text/csv; charset=utf-8` attachment: a header row, then the rows")
    } else if route.path == "/chat/sessions/{id}/events" {
        ResponseBuilder::new().description(
            "`text/event-stream`: watching, then each turn's message_started and chat events, until the client leaves",
        )
    } else {
        ResponseBuilder::new().description("Success")
    };
    let mut builder = ResponsesBuilder::new().response("200", ok.build()).response(
        "422",
        ResponseBuilder::new().description("Invalid body or parameters (`detail` lists them)").build(),
    );
    if route.access != Access::Public {
        builder = builder.response("401", ResponseBuilder::new().description("Not authenticated").build());
    }
    if route.access == Access::Admin {
        builder = builder.response("403", ResponseBuilder::new().description("Needs the admin role").build());
    }
    if route.path.contains('{') {
        builder = builder.response("404", ResponseBuilder::new().description("Unknown id").build());
    }
    builder.build()
}

/// The `{name}` placeholders of a path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_parameters() {
        assert_eq!(path_params("/connections/{id}/schema"), vec!["id"]);
        assert!(path_params("/chat").is_empty());
    }

    #[test]
    fn every_route_is_documented_once() {
        let mut seen = std::collections::HashSet::new();
        for route in ROUTES {
            assert!(seen.insert((route.method, route.path)), "{} {} listed twice", route.method, route.path);
        }
        let mut spec = OpenApi::new(utoipa::openapi::Info::new("t", "1"), utoipa::openapi::Paths::new());
        document(&mut spec);
        assert!(spec.paths.paths.contains_key("/api/v1/chat"));
        assert!(spec.paths.paths.contains_key("/api/v1/connections/{id}/execution-mode"));
    }
}
