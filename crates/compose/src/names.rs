//! Which imports a dependency's name satisfies, as Spin matches its `[component.x.dependencies]`
//! names: `ns:pkg/iface@1.2.0` one interface at one version, `ns:pkg/iface` that interface at
//! any version, `ns:pkg@1.2.0` and `ns:pkg` every interface of the package, and a plain name
//! (`greeter`) the import of exactly that name.

/// An import or dependency name, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Name<'a> {
    /// `ns:pkg[/iface][@version]`.
    Interface {
        package: &'a str,
        interface: Option<&'a str>,
        version: Option<&'a str>,
    },
    /// A plain name.
    Plain(&'a str),
}

impl<'a> Name<'a> {
    pub(crate) fn parse(name: &'a str) -> Self {
        if !name.contains(':') {
            return Name::Plain(name);
        }
        let (path, version) = match name.split_once('@') {
            Some((path, version)) => (path, Some(version)),
            None => (name, None),
        };
        let (package, interface) = match path.split_once('/') {
            Some((package, interface)) => (package, Some(interface)),
            None => (path, None),
        };
        Name::Interface {
            package,
            interface,
            version,
        }
    }

    /// Whether a dependency of this name satisfies the import `import`.
    pub(crate) fn satisfies(&self, import: &str) -> bool {
        match (self, Name::parse(import)) {
            (Name::Plain(a), Name::Plain(b)) => *a == b,
            (
                Name::Interface {
                    package,
                    interface,
                    version,
                },
                Name::Interface {
                    package: p,
                    interface: i,
                    version: v,
                },
            ) => {
                *package == p
                    && interface.is_none_or(|want| Some(want) == i)
                    && version.is_none_or(|want| Some(want) == v)
            }
            _ => false,
        }
    }

    /// Whether it names one interface (or one plain import), not a whole package.
    pub(crate) fn is_one_import(&self) -> bool {
        !matches!(
            self,
            Name::Interface {
                interface: None,
                ..
            }
        )
    }
}

/// `name` without its `@version`.
pub(crate) fn unversioned(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_spin_matches_them() {
        let import = "shoal:examples/greet@0.1.0";
        for (dependency, matches) in [
            ("shoal:examples/greet@0.1.0", true),
            ("shoal:examples/greet", true),
            ("shoal:examples@0.1.0", true),
            ("shoal:examples", true),
            ("shoal:examples/greet@0.2.0", false),
            ("shoal:examples/other", false),
            ("shoal:other", false),
            ("greet", false),
        ] {
            assert_eq!(
                Name::parse(dependency).satisfies(import),
                matches,
                "{dependency}"
            );
        }
        assert!(Name::parse("greet").satisfies("greet"));
        assert!(!Name::parse("greet").satisfies("greeter"));
        assert!(!Name::parse("shoal:examples").is_one_import());
        assert!(Name::parse("shoal:examples/greet").is_one_import());
    }
}
