//! The API's description: `GET /openapi.json` (OpenAPI 3.1, generated from the route
//! annotations) and `GET /docs`, a Swagger UI page that loads `swagger-ui-dist` from a CDN and
//! points it at `/openapi.json` (so no assets are built into the binary).

use std::sync::LazyLock;

use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::OpenApi as OpenApiSpec;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{health, inference, openai};

/// The OpenAPI description of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quarry",
        description = "Ask a database questions in plain language. Drop-in compatible with SQL Query Engine's \
            `/inference` routes and with OpenAI's `/v1` chat and text completions."
    ),
    paths(
        health::ping,
        inference::query_engine,
        inference::query_generation,
        inference::query_evaluation,
        openai::models::list_models,
        openai::chat::chat_completions,
        openai::completions::completions,
    ),
    tags(
        (name = "SQL Inference", description = "The full pipeline: generate SQL, run it read-only, repair it until it works."),
        (name = "SQL Generation", description = "Generation only: SQL from a question, not executed."),
        (name = "SQL Evaluation", description = "Run given SQL read-only and repair it if it fails."),
        (name = "OpenAI Compatible", description = "Use Quarry as a model from any OpenAI client."),
        (name = "Ping", description = "Health check."),
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the `/v1` routes name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiSpec) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

static SPEC: LazyLock<OpenApiSpec> = LazyLock::new(|| {
    let mut spec = ApiDoc::openapi();
    super::v1::catalog::document(&mut spec);
    spec
});

/// `/openapi.json` and `/docs`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(swagger_ui))
}

async fn openapi_json() -> Json<&'static OpenApiSpec> {
    Json(&SPEC)
}

async fn swagger_ui() -> Html<&'static str> {
    Html(SWAGGER_UI)
}

/// The Swagger UI page.
const SWAGGER_UI: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Quarry - Swagger UI</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      layout: "BaseLayout",
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  </script>
</body>
</html>
"##;
