//! The OpenAPI description: valid OpenAPI 3.1 as openapi-spec-validator sees
//! it, every described operation answered by a real handler, unique
//! operation ids, the error shape on every operation, and the docs page.

use crate::harness::Daemon;
use reqwest::Method;
use serde_json::Value;

/// The Python with openapi-spec-validator that `scripts/test.sh` installs.
fn validator_python() -> String {
    std::env::var("GATEHOUSE_TEST_OPENAPI_PYTHON")
        .unwrap_or_else(|_| "target/openapi-peer/bin/python".into())
}

/// A path from a template, each `{param}` filled with its enum's first value,
/// or `1`.
fn concrete_path(template: &str, operation: &Value) -> String {
    let mut path = template.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().expect("parameter name");
        let value = parameter["schema"]["enum"][0].as_str().unwrap_or("1");
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "unfilled parameter in {template}");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_description_is_valid_and_every_operation_is_served() {
    let d = Daemon::start().await;
    let (status, spec) = d
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");

    // openapi-spec-validator checks the document, $refs included.
    let file = d.dir.path().join("openapi.json");
    std::fs::write(&file, spec.to_string()).expect("spec written");
    let run = std::process::Command::new(validator_python())
        .args([
            "-c",
            "import json,sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))",
        ])
        .arg(&file)
        .output()
        .expect("the validator runs (scripts/test.sh installs it)");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let paths = spec["paths"].as_object().expect("paths");
    let mut operation_ids = std::collections::BTreeSet::new();
    let mut operations = 0;
    for (template, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            operations += 1;
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(operation_ids.insert(id.to_owned()), "{id} twice");
            assert!(
                operation["tags"][0].is_string(),
                "{method} {template} untagged"
            );
            let responses = operation["responses"].as_object().expect("responses");
            assert!(
                responses
                    .keys()
                    .any(|code| code.starts_with('2') || code.starts_with('3')),
                "{method} {template} describes no success"
            );
            assert_eq!(
                responses["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {template}"
            );

            // Sent without credentials and with an empty object, a described
            // operation reaches its handler: never the fallback's "no such
            // route" nor a 405.
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let path = concrete_path(template, operation);
            let body = matches!(method, Method::POST | Method::PUT | Method::PATCH)
                .then(|| serde_json::json!({}));
            let (status, answer) = d.call(method.clone(), &path, None, body).await;
            assert_ne!(status, 405, "{method} {path}: {answer}");
            assert_ne!(
                answer["error"]["message"], "no such route",
                "{method} {path} is described but not served"
            );
        }
    }
    assert!(operations >= 70, "only {operations} operations described");

    // Anything not described is not served either.
    let (status, answer) = d
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Public operations say so; the rest need the bearer token.
    assert_eq!(
        paths["/api/v1/login"]["post"]["security"],
        serde_json::json!([{}])
    );
    assert!(paths["/api/v1/users"]["post"].get("security").is_none());
    assert_eq!(spec["security"], serde_json::json!([{ "bearer": [] }]));
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The docs page.
    let page = reqwest::get(format!("{}/api/docs/", d.base))
        .await
        .expect("docs page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    let init = reqwest::get(format!("{}/api/docs/swagger-initializer.js", d.base))
        .await
        .expect("initializer")
        .text()
        .await
        .expect("js");
    assert!(init.contains("/api/v1/openapi.json"), "{init}");
    d.stop().await;
}
