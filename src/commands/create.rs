//! `shoal create node NAME`: an operator makes a node's credential, so that the node joins
//! without the cluster's join token.

use crate::settings::Global;

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
}

/// Runs `shoal create`.
pub async fn run(g: Global, args: Args) -> anyhow::Result<()> {
    let What::Node { name, replace } = args.what;
    let credential = g.client()?.join_node(&name, replace).await?;
    eprintln!(
        "node/{name}: credential created (it is shown once); start the node with: shoal node --name {name} --join-token CREDENTIAL"
    );
    println!("{credential}");
    Ok(())
}
