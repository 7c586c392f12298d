//! Users, what they are entitled to, and the intersection with what a scope asks for.

/// A right to some actions on resources whose name matches a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The scope's resource type: `repository`, or `registry` (for `catalog`).
    pub resource_type: String,
    /// `*` (every name), `prefix/*` (every name under `prefix/`) or an exact name.
    pub pattern: String,
    /// The actions granted; `*` grants every action asked for.
    pub actions: Vec<String>,
}

impl Grant {
    /// `actions` on every repository matching `pattern` (`*`, `prefix/*` or an exact name).
    pub fn repository(pattern: &str, actions: &[&str]) -> Grant {
        Grant {
            resource_type: "repository".into(),
            pattern: pattern.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The catalog (`registry:catalog:*`).
    pub fn catalog() -> Grant {
        Grant {
            resource_type: "registry".into(),
            pattern: "catalog".into(),
            actions: vec!["*".into()],
        }
    }

    fn matches(&self, resource_type: &str, name: &str) -> bool {
        if self.resource_type != resource_type {
            return false;
        }
        match self.pattern.strip_suffix('*') {
            Some("") => true,
            Some(prefix) if prefix.ends_with('/') => name.starts_with(prefix),
            _ => self.pattern == name,
        }
    }
}

/// A user of the token server (and of the test double's Basic auth).
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The password (never printed by `Debug`).
    pub password: String,
    /// What the user may do.
    pub grants: Vec<Grant>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .field("grants", &self.grants)
            .finish()
    }
}

impl User {
    /// A user `name` with `password` and `grants`.
    pub fn new(name: &str, password: &str, grants: Vec<Grant>) -> User {
        User {
            name: name.into(),
            password: password.into(),
            grants,
        }
    }
}

/// A parsed scope: `type:name:actions` (the name may itself hold colons, the actions are
/// after the last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scope {
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses one scope; `None` when it has fewer than three parts.
    pub fn parse(text: &str) -> Option<Scope> {
        let (resource_type, rest) = text.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        // `repository(plugin):name` carries a class after the type: the type is what counts.
        let resource_type = resource_type
            .split_once('(')
            .map_or(resource_type, |(t, _)| t);
        Some(Scope {
            resource_type: resource_type.into(),
            name: name.into(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }

    /// The actions of this scope that `grants` allow, in the order asked.
    pub fn granted(&self, grants: &[Grant]) -> Vec<String> {
        self.actions
            .iter()
            .filter(|action| {
                grants.iter().any(|g| {
                    g.matches(&self.resource_type, &self.name)
                        && g.actions.iter().any(|a| a == "*" || a == *action)
                })
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_granted_only_what_the_grants_allow() {
        let grants = vec![
            Grant::repository("team/*", &["pull", "push"]),
            Grant::repository("public", &["pull"]),
        ];
        let scope = Scope::parse("repository:team/app:pull,push,delete").unwrap();
        assert_eq!(scope.granted(&grants), ["pull", "push"]);
        let scope = Scope::parse("repository:public:pull,push").unwrap();
        assert_eq!(scope.granted(&grants), ["pull"]);
        let scope = Scope::parse("repository:teams/app:pull").unwrap();
        assert!(scope.granted(&grants).is_empty());
        let scope = Scope::parse("registry:catalog:*").unwrap();
        assert!(scope.granted(&grants).is_empty());
        assert_eq!(scope.granted(&[Grant::catalog()]), ["*"]);
        let scope = Scope::parse("repository(plugin):x/y:pull").unwrap();
        assert_eq!(scope.resource_type, "repository");
        assert_eq!(scope.name, "x/y");
        assert!(Scope::parse("repository:only-two").is_none());
    }
}
