//! Organizations, projects, members and records through the HTTP API, with the
//! permission rule behind every answer.

use crate::harness::{Daemon, code, id};
use reqwest::Method;
use serde_json::{Value, json};

/// An organization created by root; returns its id.
async fn organization(d: &Daemon, code_: &str) -> u64 {
    let (status, org) = d
        .post(
            "/api/v1/organizations",
            &d.root,
            json!({ "code": code_, "name": format!("{code_} org") }),
        )
        .await;
    assert_eq!(status, 201, "{org}");
    id(&org)
}

/// A user in `org` with an API token: (id, token).
async fn member(d: &Daemon, login: &str, org: Option<u64>) -> (u64, String) {
    let (uid, token) = d.user_with_roles(login, &[]).await;
    if let Some(org) = org {
        let (status, _) = d
            .call(
                Method::PUT,
                &format!("/api/v1/users/{uid}/organization"),
                Some(&d.root),
                Some(json!({ "organization": org })),
            )
            .await;
        assert_eq!(status, 204);
    }
    (uid, token)
}

async fn put(d: &Daemon, path: &str, token: &str, body: Value) -> (u16, Value) {
    d.call(Method::PUT, path, Some(token), Some(body)).await
}

#[tokio::test]
async fn organizations_are_admin_made_and_member_edited() {
    let d = Daemon::start().await;
    let org = organization(&d, "NZ-DOC").await;
    let (status, reply) = d
        .post(
            "/api/v1/organizations",
            &d.root,
            json!({ "code": "nz-doc", "name": "Again" }),
        )
        .await;
    assert_eq!((status, code(&reply)), (409, "duplicate"));
    let (status, reply) = d
        .post(
            "/api/v1/organizations",
            &d.root,
            json!({ "code": "bad code", "name": "X" }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("code"))
    );
    let (_, insider) = member(&d, "insider", Some(org)).await;
    let (_, outsider) = member(&d, "outsider", None).await;
    assert_eq!(
        d.post(
            "/api/v1/organizations",
            &insider,
            json!({ "code": "MINE", "name": "Mine" })
        )
        .await
        .0,
        403
    );
    assert_eq!(
        d.get(&format!("/api/v1/organizations/{org}"), &insider)
            .await
            .1["code"],
        "NZ-DOC"
    );
    let (status, updated) = d
        .patch(
            &format!("/api/v1/organizations/{org}"),
            &insider,
            json!({ "description": "field staff" }),
        )
        .await;
    assert_eq!(
        (status, &updated["description"]),
        (200, &json!("field staff"))
    );
    assert_eq!(
        d.patch(
            &format!("/api/v1/organizations/{org}"),
            &insider,
            json!({ "code": "NEW" })
        )
        .await
        .0,
        403
    );
    assert_eq!(
        d.patch(
            &format!("/api/v1/organizations/{org}"),
            &outsider,
            json!({ "description": "x" })
        )
        .await
        .0,
        403
    );
    let (status, reply) = put(
        &d,
        "/api/v1/users/5/organization",
        &d.root,
        json!({ "organization": 999 }),
    )
    .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("organization"))
    );
    d.stop().await;
}

#[tokio::test]
async fn project_members_follow_the_ladder_and_keep_an_owner() {
    let d = Daemon::start().await;
    let org = organization(&d, "LAB").await;
    let (owner_id, owner) = member(&d, "olive", Some(org)).await;
    let (manager_id, manager) = member(&d, "manu", Some(org)).await;
    let (editor_id, _) = member(&d, "eddie", Some(org)).await;
    // Organizations are not required for editing by default (project-only
    // installs); `organizations.required_for_editing` is tested in `field`.
    let (_, homeless) = member(&d, "homeless", None).await;
    assert_eq!(
        d.post("/api/v1/projects", &homeless, json!({ "name": "Mine" }))
            .await
            .0,
        201
    );
    let (status, project) = d
        .post(
            "/api/v1/projects",
            &owner,
            json!({ "name": "Kiwi survey", "kind": "research" }),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    let pid = id(&project);
    assert_eq!(project["members"][owner_id.to_string()], "owner");

    let members = |uid: u64| format!("/api/v1/projects/{pid}/members/{uid}");
    assert_eq!(
        put(
            &d,
            &members(manager_id),
            &owner,
            json!({ "role": "manager" })
        )
        .await
        .0,
        200
    );
    assert_eq!(
        put(
            &d,
            &members(editor_id),
            &manager,
            json!({ "role": "editor" })
        )
        .await
        .0,
        200,
        "managers set roles below manager"
    );
    let (status, reply) = put(
        &d,
        &members(editor_id),
        &manager,
        json!({ "role": "manager" }),
    )
    .await;
    assert_eq!(
        (status, code(&reply)),
        (403, "forbidden"),
        "only owners grant manager"
    );
    assert_eq!(d.delete(&members(owner_id), &manager).await.0, 403);
    let (status, reply) = d.delete(&members(owner_id), &owner).await;
    assert_eq!((status, code(&reply)), (409, "last_owner"));
    let (status, reply) = put(&d, &members(owner_id), &owner, json!({ "role": "editor" })).await;
    assert_eq!((status, code(&reply)), (409, "last_owner"));
    let (_, listed) = d
        .get(&format!("/api/v1/projects/{pid}/members"), &manager)
        .await;
    assert_eq!(listed["members"][editor_id.to_string()], "editor");
    let (_, mine) = d.get("/api/v1/me/projects", &manager).await;
    assert_eq!(
        mine["projects"],
        json!([{ "id": pid, "name": "Kiwi survey", "kind": "research", "role": "manager" }])
    );
    assert_eq!(
        d.patch(
            &format!("/api/v1/projects/{pid}"),
            &manager,
            json!({ "settings": { "bait": "peanut" } })
        )
        .await
        .0,
        200
    );
    assert_eq!(
        d.delete(&format!("/api/v1/projects/{pid}"), &manager)
            .await
            .0,
        403,
        "only owners delete a project"
    );
    d.stop().await;
}

#[tokio::test]
async fn records_assignments_and_the_permission_check() {
    let d = Daemon::start().await;
    let org = organization(&d, "TRAP").await;
    // Everyone but the creator in another organization: members of the
    // record's own organization may edit it whatever their project role.
    let other = organization(&d, "ELSE").await;
    let (owner_id, owner) = member(&d, "own", Some(other)).await;
    let (creator_id, creator) = member(&d, "creator", Some(org)).await;
    let (helper_id, helper) = member(&d, "helper", Some(other)).await;
    let (reader_id, reader) = member(&d, "reader", Some(other)).await;
    let (editor_id, _) = member(&d, "editor", Some(other)).await;
    let (_, project) = d
        .post("/api/v1/projects", &owner, json!({ "name": "Lines" }))
        .await;
    let pid = id(&project);
    for (uid, role) in [
        (creator_id, "member"),
        (helper_id, "member"),
        (reader_id, "readonly"),
        (editor_id, "editor"),
    ] {
        put(
            &d,
            &format!("/api/v1/projects/{pid}/members/{uid}"),
            &owner,
            json!({ "role": role }),
        )
        .await;
    }
    let (status, record) = d.post("/api/v1/resources", &creator, json!({ "kind": "station", "name": "S1", "project": pid, "attributes": { "bait": "egg" } })).await;
    assert_eq!(status, 201, "{record}");
    let rid = id(&record);
    assert_eq!(record["source_organization"], org);
    let path = format!("/api/v1/resources/{rid}");
    assert_eq!(
        d.get(&path, &helper).await.0,
        403,
        "members see only their own and assigned records"
    );
    assert_eq!(
        d.get(&path, &reader).await.0,
        200,
        "readonly sees every record"
    );
    assert_eq!(
        d.patch(&path, &reader, json!({ "name": "renamed" }))
            .await
            .0,
        403
    );

    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/assign",
            &creator,
            json!({ "ids": [rid], "users": [helper_id] }),
        )
        .await;
    assert_eq!(
        reply["results"][0]["error"]["code"], "forbidden",
        "assigning needs the right to manage members"
    );
    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/assign",
            &owner,
            json!({ "ids": [rid], "users": [helper_id] }),
        )
        .await;
    assert_eq!(reply["succeeded"], 1, "{reply}");
    assert_eq!(
        d.patch(&path, &helper, json!({ "name": "S1b" })).await.0,
        200,
        "assigned members edit"
    );
    assert_eq!(d.delete(&path, &helper).await.0, 403, "but do not delete");
    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/unassign",
            &owner,
            json!({ "ids": [rid], "users": [editor_id] }),
        )
        .await;
    assert_eq!(reply["results"][0]["error"]["code"], "role_grants_access");
    assert!(
        reply["results"][0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("editor"))
    );

    let check = |user: u64, action: &str| {
        format!("/api/v1/authz/check?user={user}&action={action}&resource={rid}")
    };
    let (status, decision) = d.get(&check(helper_id, "edit"), &d.root).await;
    assert_eq!((status, &decision["allowed"]), (200, &json!(true)));
    assert_eq!(
        d.get(&check(helper_id, "delete"), &d.root).await.1["allowed"],
        false
    );
    assert_eq!(
        d.get(&check(reader_id, "report"), &d.root).await.1["allowed"],
        false
    );
    assert_eq!(
        d.get(&check(editor_id, "report"), &d.root).await.1["allowed"],
        true
    );
    assert_eq!(
        d.get(&check(helper_id, "view"), &helper).await.0,
        200,
        "users may ask about themselves"
    );
    assert_eq!(d.get(&check(reader_id, "view"), &helper).await.0, 403);
    assert_eq!(d.get(&check(helper_id, "fly"), &d.root).await.0, 400);

    let (_, reply) = d
        .post(
            "/api/v1/resources/actions/set-owner",
            &owner,
            json!({ "ids": [rid], "owner": helper_id, "managers": [] }),
        )
        .await;
    assert_eq!(reply["results"][0]["resource"]["owner"], helper_id);
    // The creator leaves the record's organization too (whose members edit it).
    put(
        &d,
        &format!("/api/v1/users/{creator_id}/organization"),
        &d.root,
        json!({ "organization": other }),
    )
    .await;
    assert_eq!(
        d.get(&check(creator_id, "edit"), &d.root).await.1["allowed"],
        false,
        "having created the record is no right once ownership moved"
    );
    assert_eq!(
        d.patch(&path, &creator, json!({ "name": "mine?" })).await.0,
        403
    );
    assert_eq!(
        d.delete(&path, &helper).await.0,
        204,
        "the new owner may delete"
    );
    let (_, listed) = d.get("/api/v1/resources", &creator).await;
    assert_eq!(listed["resources"], json!([]));
    let _ = owner_id;
    d.stop().await;
}

#[tokio::test]
async fn deleting_an_organization_keeps_records_it_only_stewards() {
    let d = Daemon::start().await;
    let (a, b) = (organization(&d, "A").await, organization(&d, "B").await);
    let (_, a_user) = member(&d, "anna", Some(a)).await;
    let (_, b_user) = member(&d, "bert", Some(b)).await;
    let (_, owned) = d
        .post(
            "/api/v1/resources",
            &a_user,
            json!({ "kind": "trail", "name": "A trail" }),
        )
        .await;
    let (_, stewarded) = d
        .post(
            "/api/v1/resources",
            &b_user,
            json!({ "kind": "trail", "name": "B trail", "steward_organization": a }),
        )
        .await;
    let (status, plan) = d
        .delete(&format!("/api/v1/organizations/{a}?dry_run=true"), &d.root)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (&plan["deleted_resources"], &plan["steward_cleared"]),
        (&json!([id(&owned)]), &json!([id(&stewarded)]))
    );
    assert_eq!(
        d.get(&format!("/api/v1/resources/{}", id(&owned)), &d.root)
            .await
            .0,
        200,
        "a dry run deletes nothing"
    );
    let (_, done) = d
        .delete(&format!("/api/v1/organizations/{a}"), &d.root)
        .await;
    assert_eq!(done["dry_run"], false);
    assert_eq!(
        d.get(&format!("/api/v1/resources/{}", id(&owned)), &d.root)
            .await
            .0,
        404
    );
    let (status, kept) = d
        .get(&format!("/api/v1/resources/{}", id(&stewarded)), &d.root)
        .await;
    assert_eq!((status, &kept["steward_organization"]), (200, &json!(null)));
    assert_eq!(
        d.get("/api/v1/me", &a_user).await.1["organization"],
        json!(null)
    );
    d.stop().await;
}

#[tokio::test]
async fn set_roles_bulk_action_grants_and_activates() {
    let d = Daemon::start().await;
    let org = organization(&d, "UNI").await;
    let (_, owner) = member(&d, "prof", Some(org)).await;
    let (_, project) = d
        .post(
            "/api/v1/projects",
            &owner,
            json!({ "name": "Birds", "kind": "classification" }),
        )
        .await;
    let pid = id(&project);
    let students: Vec<u64> = {
        let mut ids = Vec::new();
        for login in ["stu1", "stu2"] {
            ids.push(id(&d
                .create(json!({ "login": login, "status": "pending" }))
                .await));
        }
        ids
    };
    let reply = d.bulk("set-roles", json!({ "ids": students, "projects": [{ "id": pid, "role": "annotator" }], "activate": true })).await;
    assert_eq!(reply["succeeded"], 2, "{reply}");
    assert_eq!(reply["results"][0]["user"]["status"], "active");
    let (_, project) = d.get(&format!("/api/v1/projects/{pid}"), &owner).await;
    assert_eq!(project["members"][students[1].to_string()], "annotator");
    let (status, reply) = d
        .post(
            "/api/v1/users/actions/set-roles",
            &d.root,
            json!({ "ids": students }),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("projects"))
    );
    d.stop().await;
}

#[tokio::test]
async fn deleting_and_masking_users_reach_their_records() {
    let d = Daemon::start_with(|c| c.masking.record_attributes = vec!["observer".into()]).await;
    let org = organization(&d, "OBS").await;
    let (leaver, leaver_token) = member(&d, "leaver", Some(org)).await;
    let (masked, masked_token) = member(&d, "private", Some(org)).await;
    let (_, kept) = d
        .post(
            "/api/v1/resources",
            &leaver_token,
            json!({ "kind": "station", "name": "L1" }),
        )
        .await;
    let (_, personal) = d.post("/api/v1/resources", &masked_token, json!({ "kind": "station", "name": "P1", "attributes": { "observer": "Pia Smith", "count": 3 } })).await;
    assert_eq!(
        d.delete(&format!("/api/v1/users/{leaver}"), &d.root)
            .await
            .0,
        200
    );
    let (_, kept) = d
        .get(&format!("/api/v1/resources/{}", id(&kept)), &d.root)
        .await;
    assert_eq!(
        (&kept["owner"], &kept["created_by"]),
        (&json!(2), &json!(2)),
        "records pass to deleted_user"
    );
    d.bulk("mask", json!({ "ids": [masked] })).await;
    let (_, personal) = d
        .get(&format!("/api/v1/resources/{}", id(&personal)), &d.root)
        .await;
    assert_eq!(
        personal["attributes"],
        json!({ "observer": format!("masked-{masked}"), "count": 3 })
    );
    assert_eq!(personal["owner"], masked, "masking keeps ownership");
    d.stop().await;
}

/// Posts a CSV body to an organization's import route.
async fn import(d: &Daemon, org: u64, token: &str, body: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/organizations/{org}/import", d.base))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .expect("sent");
    (
        response.status().as_u16(),
        response.json::<Value>().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn csv_import_skips_other_sources_and_refuses_bad_rows_whole() {
    let d = Daemon::start().await;
    let (own, other) = (
        organization(&d, "DOC").await,
        organization(&d, "OTHER").await,
    );
    let (_, importer) = member(&d, "importer", Some(own)).await;
    let csv = "kind,name,source,bait\nstation,T1,DOC,egg\nstation,T2,OTHER,rat\n\"trap line\",\"T3, north\",doc,\n";
    let (status, report) = import(&d, own, &importer, csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["created"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["skipped"], json!([{ "line": 3, "source": "OTHER" }]));
    let (_, listed) = d.get("/api/v1/resources", &importer).await;
    let names: Vec<&str> = listed["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["T1", "T3, north"]);
    assert_eq!(
        listed["resources"][0]["attributes"],
        json!({ "bait": "egg" })
    );

    let (status, reply) = import(
        &d,
        own,
        &importer,
        "kind,name,source\nstation,ok,DOC\nstation,,DOC\n",
    )
    .await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("line 3")),
        "{reply}"
    );
    let (_, listed) = d.get("/api/v1/resources", &importer).await;
    assert_eq!(
        listed["resources"].as_array().map(Vec::len),
        Some(2),
        "a bad row imports nothing"
    );
    let (status, reply) = import(&d, own, &importer, "kind,name\nstation,x\n").await;
    assert_eq!(
        (status, reply["error"]["field"].as_str()),
        (400, Some("line 1"))
    );
    assert_eq!(
        import(&d, other, &importer, csv).await.0,
        403,
        "only admins import for another organization"
    );
    assert_eq!(import(&d, other, &d.root, csv).await.0, 200);
    d.stop().await;
}

#[tokio::test]
async fn a_projects_last_owner_cannot_leave_and_deleted_members_are_removed() {
    let d =
        Daemon::start_with(|c| c.accounts.on_delete = gatehouse::config::OnDelete::Delete).await;
    let org = organization(&d, "KEEP").await;
    let (owner_id, owner) = member(&d, "solo", Some(org)).await;
    let (helper_id, _) = member(&d, "helper", Some(org)).await;
    let (_, project) = d
        .post("/api/v1/projects", &owner, json!({ "name": "Solo" }))
        .await;
    let pid = id(&project);
    let (status, reply) = d
        .delete(&format!("/api/v1/users/{owner_id}"), &d.root)
        .await;
    assert_eq!((status, code(&reply)), (409, "last_owner"), "{reply}");
    put(
        &d,
        &format!("/api/v1/projects/{pid}/members/{helper_id}"),
        &owner,
        json!({ "role": "owner" }),
    )
    .await;
    assert_eq!(
        d.delete(&format!("/api/v1/users/{owner_id}"), &d.root)
            .await
            .0,
        204
    );
    let (_, members) = d
        .get(&format!("/api/v1/projects/{pid}/members"), &d.root)
        .await;
    assert_eq!(
        members["members"],
        json!({ helper_id.to_string(): "owner" })
    );
    d.stop().await;
}

/// The last two owners of a project remove each other at the same moment, 20
/// times over: the check runs inside each unit of work, so exactly one removal
/// goes through and the project always keeps an owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_removing_each_other_leave_one_owner() {
    let d = Daemon::start().await;
    let org = organization(&d, "race").await;
    let owners = [
        member(&d, "ada", Some(org)).await,
        member(&d, "bob", Some(org)).await,
    ];
    let (status, project) = d
        .post("/api/v1/projects", &d.root, json!({ "name": "Contested" }))
        .await;
    assert_eq!(status, 201, "{project}");
    let project = id(&project);
    let members = |user: u64| format!("/api/v1/projects/{project}/members/{user}");
    for (uid, _) in &owners {
        let (status, reply) = put(&d, &members(*uid), &d.root, json!({ "role": "owner" })).await;
        assert_eq!(status, 200, "{reply}");
    }
    let (status, reply) = d.delete(&members(1), &d.root).await;
    assert_eq!(status, 200, "root steps down: {reply}");
    for round in 0..20 {
        let paths = [members(owners[0].0), members(owners[1].0)];
        let (first, second) = tokio::join!(
            d.delete(&paths[1], &owners[0].1),
            d.delete(&paths[0], &owners[1].1)
        );
        let removed = [first.0, second.0].iter().filter(|s| **s == 200).count();
        assert_eq!(removed, 1, "round {round}: {first:?} {second:?}");
        let refused = if first.0 == 200 { &second } else { &first };
        assert!(
            [409, 403].contains(&refused.0),
            "round {round}: the other is refused (last owner, or no longer an owner): {refused:?}"
        );
        let (_, view) = d.get(&format!("/api/v1/projects/{project}"), &d.root).await;
        let remaining = view["owners"].as_array().map(Vec::len);
        assert_eq!(remaining, Some(1), "round {round}: {view}");
        let winner = if first.0 == 200 { 0 } else { 1 };
        let (status, reply) = put(
            &d,
            &members(owners[1 - winner].0),
            &owners[winner].1,
            json!({ "role": "owner" }),
        )
        .await;
        assert_eq!(status, 200, "round {round}: {reply}");
    }
    d.stop().await;
}
