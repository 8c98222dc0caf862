//! Spin's identifiers: component ids are kebab-case, variable names lower snake_case, store
//! labels either (Spin's `crates/serde` id rules).

/// Words separated by `sep`, each starting with an ASCII letter and holding only ASCII
/// letters and digits, each all lowercase or all uppercase (or only lowercase).
fn words(id: &str, sep: char, other: char, lower_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".into());
    }
    if id.contains(other) {
        return Err(format!(
            "words must be separated with '{sep}', not '{other}'"
        ));
    }
    for word in id.split(sep) {
        let Some(first) = word.chars().next() else {
            return Err(format!("'{sep}'-separated words must not be empty"));
        };
        if !first.is_ascii_alphabetic() {
            return Err(format!(
                "'{sep}'-separated words must start with an ASCII letter; got '{first}'"
            ));
        }
        if let Some(c) = word.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(format!(
                "'{sep}'-separated words may only contain alphanumeric ASCII; got '{c}'"
            ));
        }
        let lower = word.chars().all(|c| !c.is_ascii_uppercase());
        let upper = word.chars().all(|c| !c.is_ascii_lowercase());
        if lower_only && !lower {
            return Err(format!(
                "lower-case identifiers must be all lowercase; got \"{id}\""
            ));
        }
        if !lower && !upper {
            return Err(format!(
                "'{sep}'-separated words must be all lowercase or all UPPERCASE; got \"{word}\""
            ));
        }
    }
    Ok(())
}

/// A component id: kebab-case.
pub(crate) fn kebab(id: &str) -> Result<(), String> {
    words(id, '-', '_', false)
}

/// A variable name: lower snake_case.
pub(crate) fn lower_snake(id: &str) -> Result<(), String> {
    words(id, '_', '-', true)
}

/// A store or database label: kebab-case or snake_case.
pub(crate) fn label(id: &str) -> Result<(), String> {
    if kebab(id).is_ok() || words(id, '_', '-', false).is_ok() {
        Ok(())
    } else {
        Err(format!("\"{id}\": expected kebab-case or snake_case"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_ids() {
        assert!(kebab("hello-world2").is_ok());
        assert!(kebab("HELLO-world").is_ok());
        assert_eq!(
            kebab("hello_world").unwrap_err(),
            "words must be separated with '-', not '_'"
        );
        assert_eq!(
            kebab("a-1").unwrap_err(),
            "'-'-separated words must start with an ASCII letter; got '1'"
        );
        assert!(kebab("a--b").is_err());
        assert!(lower_snake("api_key").is_ok());
        assert!(lower_snake("Api").is_err());
        assert!(label("my_store").is_ok() && label("my-store").is_ok());
        assert!(label("my store").is_err());
    }
}
