//! The OpenAPI 3.1 document of the API, assembled from the handlers'
//! `#[utoipa::path]` attributes and the response types' schemas. The same
//! `OpenApiRouter` that builds the document also builds the routes, so a
//! route cannot exist without its description (and the other way round);
//! `contracts/openapi.json` is the committed copy a test keeps in step.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::{ErrorBody, ErrorCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tessera",
        description = "Self-hosted video agents with durable webhooks compatible with the hosted Mosaic agent API. \
                       Authenticate with `Authorization: Bearer mk_…` or `X-API-Key: mk_…`. Every error is `{error, detail}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
    paths(super::files::download),
    components(schemas(
        ErrorBody,
        ErrorCode,
        tessera_webhook::WebhookPayload,
        tessera_webhook::RunStartedWebhook,
        tessera_webhook::RunFinishedWebhook,
        tessera_webhook::TestWebhook,
        tessera_webhook::VideoInput,
        tessera_webhook::VideoOutput,
        tessera_webhook::InputError,
        tessera_webhook::FinishedStatus,
        tessera_webhook::TriggerInfo,
        tessera_webhook::YouTubeTriggerInfo,
        tessera_webhook::ScheduleTriggerInfo,
        tessera_webhook::ManualTriggerInfo,
        tessera_webhook::ManualSource,
    )),
    tags(
        (name = "agents", description = "Agents: validated graphs of video-editing nodes"),
        (name = "runs", description = "Runs of agents on videos"),
        (name = "triggers", description = "Schedules and YouTube channels that start runs"),
        (name = "webhooks", description = "Webhook credentials, test sends and the delivery log"),
        (name = "files", description = "Signed downloads"),
        (name = "operations", description = "Health, readiness, metrics, identity"),
    )
)]
pub struct ApiDoc;

/// The two ways to present an API key.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("mk_…")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Every operation can fail inside the server: `5XX` with the same
/// `{error, detail}` body (`internal_server_error`, 500).
pub fn describe_server_errors(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let response = ResponseBuilder::new()
        .description(
            "An unexpected failure (`internal_server_error`); details are logged, not returned",
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("5XX".into())
                .or_insert_with(|| response.clone().into());
        }
    }
}
