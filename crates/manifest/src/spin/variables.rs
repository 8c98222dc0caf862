//! Spin's variables: `[variables]` of the application, their values (given as `spin up
//! --variable k=v` and `SPIN_VARIABLE_K` give them, else the default), and the `{{ name }}`
//! templates components and `allowed_outbound_hosts` are written in.

use super::schema::Variable;
use std::collections::BTreeMap;

/// The values a `spin.toml`'s variables are read with.
#[derive(Debug, Clone, Default)]
pub struct Values {
    /// `--variable name=value`, by name.
    pub given: BTreeMap<String, String>,
    /// The environment (`SPIN_VARIABLE_NAME`).
    pub env: BTreeMap<String, String>,
    /// Only the objects' names are wanted (`shoal delete -f`): a required variable without
    /// a value is no error.
    pub names_only: bool,
}

/// A required variable's value when only names are wanted.
static NO_VALUE: String = String::new();

/// The application's variables with their values, resolved once at apply time.
pub(crate) struct Resolved {
    values: BTreeMap<String, (String, bool)>,
}

/// One template's value and whether a secret went into it.
pub(crate) struct Expanded {
    pub value: String,
    pub secret: bool,
}

impl Resolved {
    /// Each variable's value: `given` (`--variable`), else `env` (`SPIN_VARIABLE_NAME`), else
    /// its default.
    ///
    /// # Errors
    /// `(field, message)`: an invalid name, a variable both required and defaulted (or
    /// neither), a required one without a value, or a given value for no variable.
    pub(crate) fn new(
        declared: &BTreeMap<String, Variable>,
        values: &Values,
    ) -> Result<Self, (String, String)> {
        let (given, env) = (&values.given, &values.env);
        let mut resolved = BTreeMap::new();
        for (name, var) in declared {
            let field = format!("variables.{name}");
            super::ids::lower_snake(name).map_err(|m| (field.clone(), m))?;
            match (var.required, &var.default) {
                (true, Some(_)) | (false, None) => {
                    return Err((field, "must be `required` OR have a `default`".into()));
                }
                _ => {}
            }
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            let value = given
                .get(name)
                .or_else(|| env.get(&env_name))
                .or(var.default.as_ref());
            let value = match value {
                Some(v) => Some(v),
                None if values.names_only => Some(&NO_VALUE),
                None => None,
            };
            let Some(value) = value else {
                return Err((
                    field,
                    format!(
                        "is required and has no value; give one with --variable {name}=VALUE or {env_name}=VALUE"
                    ),
                ));
            };
            resolved.insert(name.clone(), (value.clone(), var.secret));
        }
        if let Some(extra) = given.keys().find(|k| !declared.contains_key(*k)) {
            let known: Vec<&str> = declared.keys().map(String::as_str).collect();
            return Err((
                format!("--variable {extra}"),
                if known.is_empty() {
                    "the manifest declares no variables".to_string()
                } else {
                    format!(
                        "the manifest declares no such variable; it has {}",
                        known.join(", ")
                    )
                },
            ));
        }
        Ok(Self { values: resolved })
    }

    /// `template` with every `{{ name }}` replaced by that variable's value.
    ///
    /// # Errors
    /// An unmatched `{{`, or a name the application does not declare.
    pub(crate) fn expand(&self, template: &str) -> Result<Expanded, String> {
        let mut value = String::new();
        let mut secret = false;
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            value.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                return Err(format!(
                    "invalid variable template \"{template}\": unmatched '{{{{'"
                ));
            };
            let name = after[..end].trim();
            let Some((v, s)) = self.values.get(name) else {
                return Err(format!(
                    "invalid variable template \"{template}\": unknown variable \"{name}\""
                ));
            };
            value.push_str(v);
            secret |= s;
            rest = &after[end + 2..];
        }
        value.push_str(rest);
        Ok(Expanded { value, secret })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(default: Option<&str>, required: bool, secret: bool) -> Variable {
        Variable {
            description: None,
            required,
            default: default.map(String::from),
            secret,
        }
    }

    #[test]
    fn values_and_templates() {
        let declared = BTreeMap::from([
            ("greeting".to_string(), var(Some("hi"), false, false)),
            ("token".to_string(), var(None, true, true)),
        ]);
        let values = |given: &[(&str, &str)], env: &[(&str, &str)]| Values {
            given: given
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Values::default()
        };
        let env = [("SPIN_VARIABLE_TOKEN", "t0k")];
        let r = Resolved::new(&declared, &values(&[], &env)).unwrap();
        let e = r.expand("{{ greeting }}, {{token}}!").unwrap();
        assert_eq!((e.value.as_str(), e.secret), ("hi, t0k!", true));
        let e = r.expand("plain").unwrap();
        assert_eq!((e.value.as_str(), e.secret), ("plain", false));
        assert_eq!(
            r.expand("{{ nope }}").err().unwrap(),
            "invalid variable template \"{{ nope }}\": unknown variable \"nope\""
        );
        assert!(r.expand("{{ greeting").err().unwrap().contains("unmatched"));

        let r = Resolved::new(&declared, &values(&[("greeting", "hey")], &env)).unwrap();
        assert_eq!(r.expand("{{greeting}}").unwrap().value, "hey");

        let (field, message) = Resolved::new(&declared, &values(&[], &[])).err().unwrap();
        assert_eq!(field, "variables.token");
        assert!(message.contains("--variable token=VALUE or SPIN_VARIABLE_TOKEN=VALUE"));

        let names_only = Values {
            names_only: true,
            ..Values::default()
        };
        assert!(Resolved::new(&declared, &names_only).is_ok());
        let (field, _) = Resolved::new(&declared, &values(&[("other", "x")], &env))
            .err()
            .unwrap();
        assert_eq!(field, "--variable other");

        let both = BTreeMap::from([("x".to_string(), var(Some("a"), true, false))]);
        let (_, message) = Resolved::new(&both, &values(&[], &[])).err().unwrap();
        assert_eq!(message, "must be `required` OR have a `default`");
    }
}
