//! What the CLI does with namespaces and access tokens: `get namespaces|tokens`, `describe
//! namespace`, `create namespace|token`.

use crate::output::{Format, age, print_serialized, table};
use crate::settings::Global;
use shoal_api::{Namespace, NamespaceStatus, Quota, TokenInfo, TokenRole};

/// `shoal get namespaces [NAME]`.
pub async fn get_namespaces(g: &Global, name: Option<&str>, output: Format) -> anyhow::Result<()> {
    let client = g.client()?;
    let namespaces = match name {
        Some(name) => vec![client.get_namespace(name).await?],
        None => client.list_namespaces().await?,
    };
    match (output, name) {
        (f, _) if f.is_table() => print!("{}", namespace_table(&namespaces, chrono::Utc::now())),
        (_, Some(_)) => print_serialized(&namespaces[0], output)?,
        (_, None) => print_serialized(&namespaces, output)?,
    }
    Ok(())
}

/// NAME, QUOTA, AGE.
fn namespace_table(namespaces: &[Namespace], now: chrono::DateTime<chrono::Utc>) -> String {
    let rows: Vec<Vec<String>> = namespaces
        .iter()
        .map(|n| {
            vec![
                n.metadata.name.clone(),
                quota_summary(&n.spec.quota),
                age(n.metadata.creation_timestamp, now),
            ]
        })
        .collect();
    table(&["NAME", "QUOTA", "AGE"], &rows)
}

fn quota_summary(q: &Quota) -> String {
    let mut parts = Vec::new();
    let mut count = |k: &str, v: Option<u64>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    count("apps", q.apps);
    count("jobs", q.jobs);
    count("instances", q.instances);
    for (k, v) in [
        ("memory", &q.memory),
        ("keyValue", &q.key_value),
        ("uploads", &q.uploads),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// `shoal get tokens`: ID, ROLE, NAMESPACE, AGE.
pub async fn get_tokens(g: &Global, output: Format) -> anyhow::Result<()> {
    let tokens = g.client()?.list_tokens().await?;
    if !output.is_table() {
        return print_serialized(&tokens, output);
    }
    if tokens.is_empty() {
        eprintln!(
            "No access tokens found; make one with `shoal create token --role view|edit -n NAMESPACE`."
        );
        return Ok(());
    }
    print!("{}", token_table(&tokens, chrono::Utc::now()));
    Ok(())
}

fn token_table(tokens: &[TokenInfo], now: chrono::DateTime<chrono::Utc>) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.role.to_string(),
                t.namespace.clone().unwrap_or_else(|| "*".into()),
                age(Some(t.created), now),
            ]
        })
        .collect();
    table(&["ID", "ROLE", "NAMESPACE", "AGE"], &rows)
}

/// `shoal describe namespace NAME`: its quota beside what its objects use.
pub async fn describe_namespace(g: &Global, name: &str) -> anyhow::Result<()> {
    let ns = g.client()?.get_namespace(name).await?;
    print!("{}", describe(&ns));
    Ok(())
}

fn describe(ns: &Namespace) -> String {
    let q = &ns.spec.quota;
    let used = ns.status.clone().unwrap_or_default();
    let NamespaceStatus {
        apps,
        jobs,
        memory,
        uploads,
    } = used;
    let mib = |b: u64| format!("{}Mi", b.div_ceil(1 << 20));
    let limit = |v: Option<String>| v.unwrap_or_else(|| "unlimited".into());
    let rows = vec![
        vec![
            "apps".into(),
            apps.to_string(),
            limit(q.apps.map(|v| v.to_string())),
        ],
        vec![
            "jobs".into(),
            jobs.to_string(),
            limit(q.jobs.map(|v| v.to_string())),
        ],
        vec![
            "memory".into(),
            mib(memory),
            limit(q.memory.as_ref().map(ToString::to_string)),
        ],
        vec![
            "uploads".into(),
            mib(uploads),
            limit(q.uploads.as_ref().map(ToString::to_string)),
        ],
        vec![
            "instances".into(),
            "(per node)".into(),
            limit(q.instances.map(|v| v.to_string())),
        ],
        vec![
            "keyValue".into(),
            "(per node)".into(),
            limit(q.key_value.as_ref().map(ToString::to_string)),
        ],
    ];
    let mut out = format!("Name:    {}\n", ns.metadata.name);
    if !ns.metadata.labels.is_empty() {
        let labels: Vec<String> = ns
            .metadata
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.push_str(&format!("Labels:  {}\n", labels.join(",")));
    }
    out.push_str("Quota:\n");
    for line in table(&["RESOURCE", "USED", "LIMIT"], &rows).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// `shoal create namespace NAME`.
pub async fn create_namespace(g: &Global, name: &str) -> anyhow::Result<()> {
    let applied = g.client()?.apply_namespace(&Namespace::named(name)).await?;
    let word = match applied.result {
        shoal_api::ApplyResult::Created => "created",
        _ => "exists already (unchanged)",
    };
    println!("namespace/{name} {word}");
    Ok(())
}

/// `shoal create token --role ROLE [-n NAMESPACE]`: the token on stdout, shown once.
pub async fn create_token(g: &Global, role: TokenRole) -> anyhow::Result<()> {
    let namespace = (role != TokenRole::Admin).then_some(g.namespace.as_str());
    let created = g.client()?.create_token(role, namespace).await?;
    let scope = match &created.info.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "every namespace".into(),
    };
    eprintln!(
        "token {} created: {role} in {scope} (it is shown once; use it as --token or SHOAL_TOKEN)",
        created.info.id
    );
    println!("{}", created.token);
    Ok(())
}
