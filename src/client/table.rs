//! Plain-text tables for the admin CLI: users one per line, and the per-id
//! results of a bulk action, columns padded to their widest cell.

use serde_json::Value;

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(text) => text.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(cell).collect();
            if items.is_empty() {
                "-".into()
            } else {
                items.join(",")
            }
        }
        other => other.to_string(),
    }
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(text, width)| format!("{text:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().cloned().map(line));
    out.join("\n")
}

/// Users as a table: id, login, email, type, status, roles, groups.
pub fn print_users(users: &[Value]) -> String {
    let columns = [
        "id",
        "login",
        "email",
        "type",
        "status",
        "system_roles",
        "groups",
    ];
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|user| columns.iter().map(|c| cell(&user[*c])).collect())
        .collect();
    render(
        &["ID", "LOGIN", "EMAIL", "TYPE", "STATUS", "ROLES", "GROUPS"],
        &rows,
    )
}

/// A bulk action's results: id, ok or the error's code and message.
pub fn print_results(reply: &Value) -> String {
    let rows: Vec<Vec<String>> = reply["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|result| {
            let outcome = match result["ok"].as_bool() {
                Some(true) => "ok".to_owned(),
                _ => format!(
                    "{}: {}",
                    cell(&result["error"]["code"]),
                    cell(&result["error"]["message"])
                ),
            };
            vec![cell(&result["id"]), outcome]
        })
        .collect();
    render(&["ID", "RESULT"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_line_up() {
        let users = [
            json!({"id": 5, "login": "ann", "email": null, "type": "local", "status": "active", "system_roles": [], "groups": ["a", "b"]}),
            json!({"id": 12, "login": "bartholomew", "email": "b@x.org", "type": "sso", "status": "pending", "system_roles": ["admin"], "groups": []}),
        ];
        let table = print_users(&users);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ID  LOGIN        EMAIL    TYPE   STATUS   ROLES  GROUPS"
        );
        assert_eq!(
            lines[1],
            "5   ann          -        local  active   -      a,b"
        );
        assert_eq!(
            lines[2],
            "12  bartholomew  b@x.org  sso    pending  admin  -"
        );
        let results = print_results(
            &json!({"results": [{"id": 5, "ok": true}, {"id": 9, "ok": false, "error": {"code": "not_found", "message": "user not found"}}]}),
        );
        assert_eq!(results, "ID  RESULT\n5   ok\n9   not_found: user not found");
    }
}
