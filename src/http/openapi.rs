//! The OpenAPI 3.1 description of the admin API, generated from the handlers'
//! `#[utoipa::path]` annotations: every route is registered through
//! `utoipa_axum::routes!`, so a route cannot exist without its description.
//! Served at `/api/v1/openapi.json`, with Swagger UI at `/api/docs`.

use utoipa::Modify;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Where the description and its browsable page are served.
pub const SPEC_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "gatehouse admin API",
        description = "Accounts, groups, projects, records, mail and operations. \
            Authenticate with `Authorization: Bearer <token>` (a session token from \
            `POST /api/v1/login`, an API token, or the root token); the `gh_session` \
            cookie set by single sign-on authenticates reads only. Every error answers \
            with the `ErrorBody` shape.",
    ),
    components(schemas(super::error::ErrorBody, super::error::ErrorDetail)),
    security(("bearer" = [])),
    modifiers(&Conventions),
    tags(
        (name = "account", description = "Sign-in, registration and one's own account"),
        (name = "users", description = "User administration and bulk actions"),
        (name = "groups", description = "Groups, audit trail and directory sync"),
        (name = "projects", description = "Organizations, projects, members and records"),
        (name = "mail", description = "The mail outbox and mail to users"),
        (name = "sso", description = "OpenID Connect single sign-on"),
        (name = "operations", description = "Health, metrics, backup and this description"),
    )
)]
struct ApiDoc;

/// The security schemes.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A session, API or root token"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sso_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "gh_session",
                "Set by single sign-on; GET and HEAD only",
            ))),
        );
    }
}

/// An answer with the error body.
fn error_answer(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// Adds the error answers every operation may give, once the routers have
/// added their operations.
pub fn finish(mut openapi: OpenApi) -> OpenApi {
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses
                .entry("4XX".into())
                .or_insert_with(|| error_answer("Refused; see `error.code` and `error.field`"));
            responses
                .entry("5XX".into())
                .or_insert_with(|| error_answer("Internal error; see the server log"));
        }
    }
    openapi
}

/// The description's skeleton, to which the routers add their operations.
pub fn base() -> OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

#[cfg(test)]
mod tests {
    /// Every route must be added with `routes!`, which describes it; a plain
    /// route call would serve an operation the description does not know.
    #[test]
    fn no_route_bypasses_the_description() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
        let mut offenders = Vec::new();
        let mut pending = vec![dir];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path)?;
                    let needle = [".route", "("].concat();
                    let service = [".route_service", "("].concat();
                    if text.contains(&needle) || text.contains(&service) {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "plain routes in {offenders:?}");
        Ok(())
    }
}
