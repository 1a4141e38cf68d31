//! Settings: the plaintext webhook secret, the Standard Webhooks signing
//! key, and API keys. New secrets and keys are shown once, on the page that
//! answers the form, and masked everywhere else.

use axum::extract::State;

use super::extract::Path;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{PageError, Section, action_button, csrf, page, when, when_opt};
use super::session::{Form, Session};
use crate::api::AppState;
use crate::api::webhooks::{rotate_key, set_webhook_secret};
use crate::domain::ids::ApiKeyId;
use crate::domain::signing::{generate_api_key, hash_api_key, mask_secret};
use crate::store::NewApiKey;

/// Something to show once at the top of the settings page.
enum Reveal {
    None,
    Secret(String),
    SigningKey(String),
    ApiKey { name: String, key: String },
}

/// `GET /dashboard/settings`
pub async fn page_handler(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    render(&state, &session, Reveal::None).await
}

async fn render(
    state: &AppState,
    session: &Session,
    reveal: Reveal,
) -> Result<Html<String>, PageError> {
    let now = chrono::Utc::now().timestamp_millis();
    let secret = state.store.webhook_secret(session.user_id).await?;
    let signing = state
        .store
        .signing_keys(
            session.user_id,
            &crate::domain::signing::generate_signing_key().as_whsec(),
            now,
        )
        .await?;
    let keys = state.store.list_api_keys(session.user_id).await?;
    let body = html! {
        h1 { "Settings" }
        (reveal_box(&reveal))
        section.card #webhook-secret {
            h2 { "Webhook secret" }
            p.muted { "Sent as " code { "X-Mosaic-Signature" } " with every webhook, for receivers written for the hosted service." }
            p { "Current: " @match &secret {
                Some(s) => span.mono #secret-preview { (mask_secret(s)) },
                None => span.muted #secret-preview { "not set" },
            } }
            form.stack method="post" action="/dashboard/settings/secret" {
                (csrf(session))
                label for="secret" { "Set your own (8–256 visible ASCII characters)" }
                input #secret type="password" name="secret" autocomplete="off" minlength="8" maxlength="256";
                div {
                    button type="submit" name="action" value="set" { "Save secret" } " "
                    button.secondary type="submit" name="action" value="generate" formnovalidate { "Generate a new secret" } " "
                    @if secret.is_some() { button.danger type="submit" name="action" value="remove" formnovalidate { "Remove secret" } }
                }
            }
        }
        section.card #signing-key {
            h2 { "Signing key" }
            p.muted { "Signs every webhook the Standard Webhooks way (" code { "webhook-signature" } "). After a rotation the previous key keeps signing beside the new one until it expires." }
            p { "Current: " span.mono { (mask_secret(&signing.current)) } }
            @if let Some((_, until)) = signing.previous { p { "Previous key signs until " (when(until)) "." } }
            form.inline method="post" action="/dashboard/settings/signing_key" {
                (csrf(session))
                button.secondary type="submit" name="action" value="reveal" { "Show key" } " "
                button.danger type="submit" name="action" value="rotate" { "Rotate key" }
            }
        }
        section.card #api-keys {
            h2 { "API keys" }
            div.table-wrap { table {
                thead { tr { th { "Name" } th { "Created" } th { "Last used" } th {} } }
                tbody { @for k in &keys { tr {
                    td { (k.name) @if k.id == session.api_key_id { " " span.muted { "(this session)" } } }
                    td { (when(k.created_at)) }
                    td { (when_opt(k.last_used_at)) }
                    td { @if keys.len() > 1 {
                        (action_button(session, &format!("/dashboard/settings/keys/{}/revoke", k.id), "Revoke", "danger"))
                    } }
                } } }
            } }
            form.filters method="post" action="/dashboard/settings/keys" {
                (csrf(session))
                label { "New key name " input type="text" name="name" required maxlength="100" placeholder="ci"; }
                button type="submit" { "Create API key" }
            }
        }
    };
    Ok(page(session, Section::Settings, "Settings", body))
}

fn reveal_box(reveal: &Reveal) -> Markup {
    let shown = |title: &str, value: &str, note: &str| {
        html! {
            div.card.flash.success #revealed role="status" {
                p { strong { (title) } }
                p.secret.mono #revealed-value { (value) }
                p.muted { (note) }
            }
        }
    };
    match reveal {
        Reveal::None => html! {},
        Reveal::Secret(s) => shown(
            "Your new webhook secret",
            s,
            "Copy it now: it will not be shown again.",
        ),
        Reveal::SigningKey(k) => shown(
            "Your signing key",
            k,
            "Give it to your receivers to verify webhook-signature.",
        ),
        Reveal::ApiKey { name, key } => shown(
            &format!("New API key “{name}”"),
            key,
            "Copy it now: it will not be shown again.",
        ),
    }
}

#[derive(Deserialize)]
pub struct SecretForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    secret: String,
}

/// `POST /dashboard/settings/secret`: set, generate or remove.
pub async fn secret(
    State(state): State<AppState>,
    Form(session, form): Form<SecretForm>,
) -> Result<Response, PageError> {
    match form.action.as_str() {
        "set" => {
            set_webhook_secret(&state, session.user_id, Some(form.secret)).await?;
            Ok(Redirect::to("/dashboard/settings").into_response())
        }
        "generate" => {
            let secret = set_webhook_secret(&state, session.user_id, None).await?;
            Ok(render(&state, &session, Reveal::Secret(secret))
                .await?
                .into_response())
        }
        "remove" => {
            let now = chrono::Utc::now().timestamp_millis();
            state
                .store
                .set_webhook_secret(session.user_id, None, now)
                .await?;
            Ok(Redirect::to("/dashboard/settings").into_response())
        }
        _ => Err(PageError::bad_request("unknown action")),
    }
}

#[derive(Deserialize)]
pub struct KeyAction {
    #[serde(default)]
    action: String,
}

/// `POST /dashboard/settings/signing_key`: show or rotate.
pub async fn signing_key(
    State(state): State<AppState>,
    Form(session, form): Form<KeyAction>,
) -> Result<Html<String>, PageError> {
    let key = match form.action.as_str() {
        "reveal" => {
            let now = chrono::Utc::now().timestamp_millis();
            state
                .store
                .signing_keys(
                    session.user_id,
                    &crate::domain::signing::generate_signing_key().as_whsec(),
                    now,
                )
                .await?
                .current
        }
        "rotate" => rotate_key(&state, session.user_id).await?.current,
        _ => return Err(PageError::bad_request("unknown action")),
    };
    render(&state, &session, Reveal::SigningKey(key)).await
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    name: String,
}

/// `POST /dashboard/settings/keys`
pub async fn create_key(
    State(state): State<AppState>,
    Form(session, form): Form<NewKeyForm>,
) -> Result<Html<String>, PageError> {
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(PageError::bad_request(
            "the key name must be 1 to 100 characters without control characters",
        ));
    }
    let key = generate_api_key();
    state
        .store
        .create_api_key(NewApiKey {
            user_id: session.user_id,
            name: name.to_owned(),
            key_hash: hash_api_key(&key),
            created_at: chrono::Utc::now().timestamp_millis(),
        })
        .await?;
    let reveal = Reveal::ApiKey {
        name: name.to_owned(),
        key,
    };
    render(&state, &session, reveal).await
}

/// `POST /dashboard/settings/keys/{id}/revoke`
pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(session, _): Form<super::session::Empty>,
) -> Result<Response, PageError> {
    let id: ApiKeyId = id.parse().map_err(|_| PageError::not_found("API key"))?;
    let now = chrono::Utc::now().timestamp_millis();
    state
        .store
        .revoke_api_key(session.user_id, id, now)
        .await
        .map_err(crate::api::error::not_found_as("API key"))?;
    // Revoking the key this session was opened with ends the session too.
    Ok(Redirect::to("/dashboard/settings").into_response())
}
