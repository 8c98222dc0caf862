//! `shoal completion bash|zsh|fish`: the shell's completion script for every command, flag
//! and value the CLI knows, generated from its own definition (clap_complete), so it never
//! falls behind.

/// Arguments of `shoal completion`.
#[derive(clap::Args)]
pub struct Args {
    /// The shell to print the script for. Load it with, e.g.,
    /// `source <(shoal completion bash)` (in ~/.bashrc), `shoal completion zsh >
    /// "${fpath[1]}/_shoal"`, or `shoal completion fish > ~/.config/fish/completions/shoal.fish`.
    pub shell: clap_complete::Shell,
}

/// Prints the completion script of `command` (the whole CLI) for the shell asked for.
pub fn run(args: &Args, mut command: clap::Command) {
    clap_complete::generate(args.shell, &mut command, "shoal", &mut std::io::stdout());
}
