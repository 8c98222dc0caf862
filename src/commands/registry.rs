//! `shoal registry login|logout REGISTRY`: the credentials `shoal push` and `shoal apply` use
//! for a registry (see `crate::credentials`).

use anyhow::bail;
use std::io::Read;

/// Arguments of `shoal registry`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Store a user name and password (or access token) for a registry.
    Login {
        /// The registry, `HOST[:PORT]`.
        registry: String,
        /// The user name.
        #[arg(short, long)]
        username: String,
        /// Read the password from standard input (it is never taken as an argument).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Forget a registry's credentials.
    Logout {
        /// The registry, `HOST[:PORT]`.
        registry: String,
    },
}

/// Runs `shoal registry`.
pub fn run(g: &crate::settings::Global, args: Args) -> anyhow::Result<()> {
    let data_dir = g.data_dir();
    match args.command {
        Command::Login {
            registry,
            username,
            password_stdin,
        } => {
            if !password_stdin {
                bail!("give the password on standard input with --password-stdin");
            }
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                bail!("--password-stdin: standard input held no password");
            }
            crate::credentials::login(&data_dir, &registry, &username, password)?;
            println!("logged in to {registry} as {username}");
        }
        Command::Logout { registry } => {
            if crate::credentials::logout(&data_dir, &registry)? {
                println!("logged out of {registry}");
            } else {
                println!("no credentials were stored for {registry}");
            }
        }
    }
    Ok(())
}
