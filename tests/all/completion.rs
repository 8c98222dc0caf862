//! Shell completion: the script `shoal completion bash` prints, loaded into a real bash,
//! completes commands and flags.

use crate::support::SHOAL;
use std::process::Command;

/// What bash's completion offers for the words `line` (the last one being completed), called
/// as bash calls it: the command, the word being completed and the one before.
fn complete(line: &[&str]) -> Vec<String> {
    let words = line.join(" ");
    let script = format!(
        "source <('{SHOAL}' completion bash) && COMP_WORDS=({words}) && COMP_CWORD={} && \
         COMP_LINE='{words}' && COMP_POINT=${{#COMP_LINE}} && \
         _shoal shoal \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\" && \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        line.len() - 1
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "bash: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_flags_from_the_script_shoal_prints() {
    assert_eq!(complete(&["shoal", "app"]), ["apply"]);
    let commands = complete(&["shoal", ""]);
    for command in ["up", "get", "completion", "rollout"] {
        assert!(commands.iter().any(|c| c == command), "{commands:?}");
    }
    let flags = complete(&["shoal", "up", "--metr"]);
    assert_eq!(flags, ["--metrics"]);
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = Command::new(SHOAL)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains("rollout"), "{shell}: {script}");
    }
}
