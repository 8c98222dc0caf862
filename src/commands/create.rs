//! `shoal create node NAME` (an operator makes a node's credential, so that the node joins
//! without the cluster's join token), `shoal create namespace NAME` and `shoal create token
//! --role view|edit|admin [-n NAMESPACE]`.

use crate::settings::Global;
use shoal_api::TokenRole;

/// Arguments of `shoal create`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// The credential of node NAME, printed once: start the node with `shoal node --name
    /// NAME --join-token CREDENTIAL`.
    Node {
        /// The node's name.
        name: String,
        /// Make a new credential for a node that has one, revoking the old (the node lost its
        /// data dir, or its credential leaked).
        #[arg(long)]
        replace: bool,
    },
    /// A namespace, with no quota (apply a `kind: Namespace` manifest to give it one).
    #[command(alias = "ns")]
    Namespace {
        /// The namespace's name.
        name: String,
    },
    /// An access token, printed once: `view` reads the namespace (-n), `edit` also applies
    /// and deletes in it, `admin` does everything everywhere.
    Token {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
    },
}

/// What a token may do (see `shoal_api::TokenRole`).
#[derive(clap::ValueEnum, Clone, Copy)]
enum Role {
    /// Read the namespace's objects, logs and events.
    View,
    /// Also apply and delete in the namespace.
    Edit,
    /// Everything, in every namespace.
    Admin,
}

/// Runs `shoal create`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    match args.what {
        What::Node { name, replace } => {
            let credential = g.client()?.join_node(&name, replace).await?;
            eprintln!(
                "node/{name}: credential created (it is shown once); start the node with: shoal node --name {name} --join-token CREDENTIAL"
            );
            println!("{credential}");
            Ok(())
        }
        What::Namespace { name } => super::tenants::create_namespace(&g, &name).await,
        What::Token { role } => {
            let role = match role {
                Role::View => TokenRole::View,
                Role::Edit => TokenRole::Edit,
                Role::Admin => TokenRole::Admin,
            };
            super::tenants::create_token(&g, role).await
        }
    }
}
